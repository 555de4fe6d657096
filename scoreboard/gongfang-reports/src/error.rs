//! The crate's one error type, and the table that gives each error its stable code and HTTP
//! status. Every message says what was wrong and how to put it right.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gongfang_core::report::{ReportError, ReportProblem};
use gongfang_core::wire::TEAM_TOKEN_HEADER;
use gongfang_store::StoreError;
use serde_json::json;

/// Why a request (or a CLI command) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportsError {
    #[error(
        "no credentials: teams send their token in the {TEAM_TOKEN_HEADER} header; judges log in at POST \
         /api/judge/login and send the token it answers as `Authorization: Bearer <token>`"
    )]
    Unauthenticated,
    /// No credentials on a judges-only route.
    #[error(
        "no credentials: log in at POST /api/judge/login and send the token it answers as \
         `Authorization: Bearer <token>`"
    )]
    NoJudgeCredentials,
    #[error("the team token is not valid; check it, or ask the organisers for a new one")]
    BadToken,
    #[error("the organisers have taken this team out of the drill; ask them why, and to bring it back")]
    TeamDisabled,
    /// A wrong name or password at the login: the one 401 that asks a browser for a judge's
    /// name and password.
    #[error("wrong judge name or password; check them and log in again")]
    BadCredentials,
    #[error("the session token is not valid: it has expired, was logged out, or its account changed; log in again")]
    BadSession,
    /// HTTP basic credentials on a route other than the login.
    #[error(
        "HTTP basic authentication is accepted only at POST /api/judge/login: log in there first, then send the \
         token it answers as `Authorization: Bearer <token>`"
    )]
    LoginFirst,
    /// Too many wrong credentials from this address, or for this account, lately.
    #[error("too many wrong credentials lately; nothing was checked; try again in {retry_after_secs} s")]
    BackedOff { retry_after_secs: u64 },
    /// Every password check is busy.
    #[error("the server is busy checking passwords; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// No API token on an organisers' route.
    #[error(
        "no credentials: send your account's API token (from `gongfang account token --name NAME`) as \
         `Authorization: Bearer <token>`"
    )]
    NoApiToken,
    #[error(
        "the API token is not valid: it was revoked or replaced, or mistyped; issue a new one with `gongfang account token`"
    )]
    BadApiToken,
    #[error("only organisers may do this; this token's account is a {role}")]
    OrganisersOnly { role: &'static str },
    /// A change asked for with a browser session's cookie but without its CSRF token.
    #[error(
        "this change was sent with a session cookie but without the session's CSRF token (the X-CSRF-Token \
         header); reload the page and try again"
    )]
    CsrfMissing,
    #[error("the CSRF token does not belong to this session; reload the page and try again")]
    CsrfMismatch,
    #[error("not logged in: log in at POST /api/session (the portal and the console pages do it for you)")]
    NotLoggedIn,
    /// A wrong name or password at a browser login (no `WWW-Authenticate`: no browser dialog).
    #[error("wrong name or password; check them and log in again")]
    WrongPassword,
    #[error("the drill is over: an end that has passed cannot be moved; extend a drill before it ends")]
    DrillOver,
    #[error("the request is larger than {limit} bytes, the most this route reads; shorten it")]
    BodyTooLarge { limit: u64 },
    #[error("only judges may do this; teams cannot rule on reports or see the judges' queue")]
    JudgesOnly,
    #[error("only teams file and appeal reports; send your team token in the {TEAM_TOKEN_HEADER} header")]
    TeamsOnly,
    #[error("team {0} is not in this drill's scenario, so it cannot file reports")]
    NotInScenario(u16),
    #[error("this drill takes no reports (the scenario has no [reports] table, or it is disabled)")]
    ReportsOff,
    #[error("nothing at {0}")]
    NotFound(String),
    /// The container engine could not restart or reset a service.
    #[error("the service could not be restarted or reset: {0}")]
    ServiceControl(String),
    /// The drill's gateway could not take a team's fresh VPN keys.
    #[error("no fresh VPN config could be made: {0}; your old config still works; tell the organisers")]
    VpnFailed(String),
    /// A team's credential pack could not be made; says what changed already.
    #[error("the credential pack was not made: {0}")]
    PackFailed(String),
    #[error("no report {0}")]
    UnknownReport(i64),
    #[error("report {report} has no evidence file {evidence}")]
    UnknownEvidence { report: i64, evidence: i64 },
    #[error(
        "send the report as application/json, or as multipart/form-data with a `report` part (the \
         JSON) and `evidence` file parts; got content type `{0}`"
    )]
    UnsupportedMediaType(String),
    #[error("evidence file `{file}` has content type `{content_type}`, which is not accepted; use one of: {allowed}")]
    EvidenceType { file: String, content_type: String, allowed: String },
    #[error(
        "evidence file `{file}` says it is {content_type}, but its bytes are not; send it with the type it really has"
    )]
    EvidenceMismatch { file: String, content_type: String },
    #[error("the request is larger than {limit} bytes; a report's evidence files may total {evidence_limit} bytes")]
    TooLarge { limit: u64, evidence_limit: u64 },
    #[error(
        "your team has filed {limit} reports, the most one team may file in this drill, so none is left; \
         ask the organisers if you must file more"
    )]
    ReportLimit { limit: u32 },
    #[error(
        "this filing's evidence would take your team over its evidence budget of {limit} bytes for the drill, \
         of which {left} are left; send fewer or smaller (compressed) files, or ask the organisers"
    )]
    EvidenceBudget { limit: u64, left: u64 },
    #[error(
        "your team already has {limit} filings with evidence uploading, the most at once; wait for one to \
         finish, then send this one again (in {retry_after_secs} s or later)"
    )]
    TooManyUploads { limit: u32, retry_after_secs: u64 },
    #[error("no team `{0}` in this drill's scenario; use a team's slug")]
    UnknownTeam(String),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("this drill has no shells: its scenario has no [vpn] table")]
    NoShells,
    #[error("no service `{0}` in this drill's scenario; use a service's slug")]
    UnknownService(String),
    #[error(
        "service `{0}` takes no submitted patches: its scenario says patch_mode = \"vulnbox\" (patch it over your shell), or it is run from an image, not a build folder"
    )]
    NotPatchable(String),
    #[error("this drill builds no patches: it runs without a container engine (`gongfang serve`); ask the organisers")]
    NoPatchBuilds,
    #[error("only defending teams patch; your team attacks only")]
    NotADefender,
    #[error(
        "the patch is larger than {limit} bytes, the most one patch may be; send a diff of what changed, or a gzip-compressed tar of the changed files only"
    )]
    PatchTooLarge { limit: u64 },
    #[error(
        "your team already has {limit} patches waiting, the most at once; wait for one to be decided (GET /api/patches)"
    )]
    PatchQueueFull { limit: u32 },
    #[error(
        "your team has sent {limit} patches, the most one team may send in this drill; ask the organisers if you must send more"
    )]
    PatchLimit { limit: u32 },
    #[error("your team's service never ran version {0}; GET /api/patches lists the versions it ran")]
    NoSuchVersion(u32),
    #[error("your team has no patch {0}")]
    UnknownPatch(i64),
    #[error("{0}")]
    ShellKey(gongfang_core::shell_key::ShellKeyError),
    #[error("{}", if *own { "your team has this key already; GET /api/shell-keys lists your keys" } else { "this key belongs to another team; make a key of your own (ssh-keygen -t ed25519)" })]
    ShellKeyTaken { own: bool },
    #[error("your team has no registered key {0}; keys generated with a VPN peer go when its config is rotated")]
    UnknownShellKey(i64),
    #[error("the report was not filed: {}", problems.iter().map(|p| p.error.to_string()).collect::<Vec<_>>().join("; "))]
    InvalidReport { problems: Vec<ReportProblem> },
    #[error("{0}")]
    Rule(ReportError),
    #[error("{0}")]
    WrongState(String),
    /// An inject that does not exist, is not for the caller's team, or an answer not given.
    #[error("{0}")]
    UnknownInject(String),
    #[error("{0}")]
    InvalidInject(String),
    /// A signed evidence address past its time.
    #[error("this evidence link has expired; open the report on the workbench again")]
    LinkExpired,
    /// A defence finding links an attack the drill has no record of, or one on another team.
    #[error("{0}")]
    BadLink(String),
    #[error("{0}")]
    SameJudge(String),
    #[error("storage failed: {0}")]
    Store(StoreError),
    /// What the store holds cannot be scored (edited by hand, or a bug).
    #[error("the stored drill is inconsistent: {0}")]
    Inconsistent(String),
    #[error("cannot read the password from standard input: {0}")]
    Io(#[from] std::io::Error),
}

impl ReportsError {
    /// The table: every error's HTTP status and stable code.
    pub fn parts(&self) -> (StatusCode, &'static str) {
        use ReportsError::*;
        match self {
            Unauthenticated | NoJudgeCredentials => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            BadToken => (StatusCode::UNAUTHORIZED, "bad_token"),
            TeamDisabled => (StatusCode::FORBIDDEN, "team_disabled"),
            NoApiToken => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            BadApiToken => (StatusCode::UNAUTHORIZED, "bad_api_token"),
            OrganisersOnly { .. } => (StatusCode::FORBIDDEN, "organisers_only"),
            CsrfMissing => (StatusCode::FORBIDDEN, "csrf_missing"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ServiceControl(_) => (StatusCode::BAD_GATEWAY, "service_control_failed"),
            VpnFailed(_) => (StatusCode::BAD_GATEWAY, "vpn_failed"),
            PackFailed(_) => (StatusCode::BAD_GATEWAY, "pack_failed"),
            CsrfMismatch => (StatusCode::FORBIDDEN, "csrf_mismatch"),
            NotLoggedIn => (StatusCode::UNAUTHORIZED, "not_logged_in"),
            WrongPassword => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            DrillOver => (StatusCode::CONFLICT, "drill_over"),
            BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            BadSession => (StatusCode::UNAUTHORIZED, "bad_session"),
            LoginFirst => (StatusCode::UNAUTHORIZED, "login_first"),
            BackedOff { .. } => (StatusCode::TOO_MANY_REQUESTS, "backed_off"),
            Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            JudgesOnly => (StatusCode::FORBIDDEN, "judges_only"),
            TeamsOnly => (StatusCode::FORBIDDEN, "teams_only"),
            NotInScenario(_) => (StatusCode::FORBIDDEN, "not_in_scenario"),
            ReportsOff => (StatusCode::FORBIDDEN, "reports_off"),
            UnknownReport(_) => (StatusCode::NOT_FOUND, "unknown_report"),
            UnknownEvidence { .. } => (StatusCode::NOT_FOUND, "unknown_evidence"),
            UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            EvidenceType { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "evidence_type"),
            EvidenceMismatch { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "evidence_mismatch"),
            TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ReportLimit { .. } => (StatusCode::TOO_MANY_REQUESTS, "report_limit"),
            EvidenceBudget { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "evidence_budget"),
            TooManyUploads { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            NoShells => (StatusCode::NOT_FOUND, "no_shells"),
            UnknownService(_) => (StatusCode::BAD_REQUEST, "unknown_service"),
            NotPatchable(_) => (StatusCode::CONFLICT, "not_patchable"),
            NoPatchBuilds => (StatusCode::SERVICE_UNAVAILABLE, "no_patch_builds"),
            NotADefender => (StatusCode::FORBIDDEN, "not_a_defender"),
            PatchTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "patch_too_large"),
            PatchQueueFull { .. } => (StatusCode::TOO_MANY_REQUESTS, "patch_queue_full"),
            PatchLimit { .. } => (StatusCode::TOO_MANY_REQUESTS, "patch_limit"),
            NoSuchVersion(_) => (StatusCode::NOT_FOUND, "no_such_version"),
            UnknownPatch(_) => (StatusCode::NOT_FOUND, "unknown_patch"),
            ShellKey(_) => (StatusCode::BAD_REQUEST, "bad_shell_key"),
            ShellKeyTaken { .. } => (StatusCode::CONFLICT, "shell_key_taken"),
            UnknownShellKey(_) => (StatusCode::NOT_FOUND, "unknown_shell_key"),
            UnknownTeam(_) => (StatusCode::BAD_REQUEST, "unknown_team"),
            InvalidReport { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_report"),
            Rule(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.code()),
            WrongState(_) => (StatusCode::CONFLICT, "wrong_state"),
            UnknownInject(_) => (StatusCode::NOT_FOUND, "unknown_inject"),
            InvalidInject(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_inject"),
            BadLink(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_link"),
            LinkExpired => (StatusCode::GONE, "link_expired"),
            SameJudge(_) => (StatusCode::CONFLICT, "same_judge"),
            Store(_) | Io(_) | Inconsistent(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ReportsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownReport(id) => ReportsError::UnknownReport(id),
            // Another team's report is answered as if it did not exist, so a team cannot learn
            // which ids others have filed.
            StoreError::NotYourReport(id) => ReportsError::UnknownReport(id),
            StoreError::ReportRule(rule) => ReportsError::Rule(rule),
            StoreError::NotAJudge(_) => ReportsError::JudgesOnly,
            StoreError::ReportLimit { limit, .. } => ReportsError::ReportLimit { limit },
            StoreError::EvidenceBudget { limit, left, .. } => ReportsError::EvidenceBudget { limit, left },
            e @ StoreError::ReportState { .. } => ReportsError::WrongState(e.to_string()),
            e @ StoreError::SameJudge { .. } => ReportsError::SameJudge(e.to_string()),
            e @ StoreError::BadLink { .. } => ReportsError::BadLink(e.to_string()),
            e @ (StoreError::UnknownInject(_) | StoreError::NoInjectAnswer { .. }) => {
                ReportsError::UnknownInject(e.to_string())
            }
            e @ (StoreError::InjectAnswered { .. } | StoreError::InjectGraded { .. }) => {
                ReportsError::WrongState(e.to_string())
            }
            StoreError::Busy { retry_after } => {
                ReportsError::Busy { retry_after_secs: gongfang_core::throttle::retry_after_secs(retry_after) }
            }
            e => ReportsError::Store(e),
        }
    }
}

impl From<ReportError> for ReportsError {
    fn from(e: ReportError) -> Self {
        ReportsError::Rule(e)
    }
}

impl IntoResponse for ReportsError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ReportsError::Store(e) => {
                tracing::error!(error = %e, "report request failed in storage");
                "internal error; try again, and tell the organisers if it persists".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({ "error": { "code": code, "message": message } });
        if let ReportsError::InvalidReport { problems } = &self {
            body["error"]["problems"] = problems
                .iter()
                .map(|p| json!({ "field": p.field, "code": p.error.code(), "message": p.error.to_string() }))
                .collect();
        }
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            // Only judges have a name and password to give, and only at the login; a team's 401
            // must not make a browser pop up a login dialog.
            ReportsError::BadCredentials => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"gongfang judges\""));
            }
            ReportsError::NoJudgeCredentials | ReportsError::LoginFirst => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gongfang judges\""));
            }
            ReportsError::BadSession => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gongfang judges\""));
                // A browser drops a dead session cookie, so a page left open stops sending it
                // (each one counts against its address's back-off).
                headers.insert(header::SET_COOKIE, HeaderValue::from_static(crate::session::CLEAR_COOKIE));
            }
            ReportsError::NoApiToken | ReportsError::BadApiToken => {
                headers
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gongfang organisers\""));
            }
            ReportsError::BackedOff { retry_after_secs } | ReportsError::Busy { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        if let ReportsError::TooManyUploads { retry_after_secs, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_client_errors_for_client_mistakes() {
        let e: ReportsError = StoreError::NotYourReport(7).into();
        assert_eq!(e.parts(), ReportsError::UnknownReport(7).parts());
        assert_eq!(e.to_string(), ReportsError::UnknownReport(7).to_string());
        assert_eq!(ReportsError::TooLarge { limit: 1, evidence_limit: 1 }.parts().0, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            ReportsError::UnsupportedMediaType("text/plain".into()).parts().0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let e = ReportsError::Rule(ReportError::ReasonRequired);
        assert_eq!(e.parts(), (StatusCode::UNPROCESSABLE_ENTITY, "reason_required"));
        let e: ReportsError = StoreError::SameJudge {
            report: 3,
            judge: "ana".into(),
            did: "made the first ruling of",
            next: "another judge must rule the appeal",
        }
        .into();
        assert_eq!(e.parts(), (StatusCode::CONFLICT, "same_judge"));
        assert!(e.to_string().contains("another judge must rule the appeal"), "{e}");
        let busy: ReportsError = StoreError::Busy { retry_after: std::time::Duration::from_millis(4_500) }.into();
        assert_eq!(busy.parts(), (StatusCode::SERVICE_UNAVAILABLE, "busy"));
        let response = busy.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let response = ReportsError::BackedOff { retry_after_secs: 42 }.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        assert!(ReportsError::LoginFirst.to_string().contains("POST /api/judge/login"));
    }
}
