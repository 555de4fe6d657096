//! Attack and defence reports over HTTP, and the judging panel.
//!
//! Red teams file *attack* reports and blue teams *defence* reports (JSON, or multipart with
//! evidence files), see their own reports and rulings, and may appeal a ruling once. Judges
//! (accounts with the judge role) log in, see a queue of pending, disputed and appealed reports,
//! each beside what the platform recorded around its window (captures, checker verdict changes,
//! container logs through a [`LogSource`]) with a suggested match, and rule: alone, or in a
//! two-judge drill two score blind and a third decides when they disagree. Rulings are
//! audited by the store and published as [`GameEvent::ReportRuled`](gongfang_core::event::GameEvent)
//! with only the fact and the points: a report's content stays with its team and the judges.
//!
//! Teams list, register and remove the SSH keys that open their shells (`/api/shell-keys`).
//!
//! Judges also read the VPN gateway's translation log (`GET /api/judge/translations`): which
//! team's peer made a connection that a service saw coming from the gateway.
//!
//! Organisers drive the running drill with their accounts' API tokens (`/api/admin/…`, see
//! [`admin`]): pause, resume, extend the end, announce. Organisers and observers read the
//! reports' anonymised statistics (`GET /api/admin/report-stats`: counts, no team, no content).
//! Organisers post injects, tasks with a deadline and a rubric, that teams answer from their
//! portal and judges grade (`injects`).
//!
//! Teams and accounts also log in from a browser (`POST /api/session`): a
//! team's portal (`/portal`), the organisers' console (`/console`) and the judges' workbench
//! (`/judge`, [`workbench`'s API](sniff_image)) are pages served here
//! ([`pages`]), in English and Hong Kong Chinese, over the same routes with a session cookie
//! and a CSRF token.
//!
//! Errors map to stable codes and HTTP statuses in one table ([`ReportsError::parts`]).
//! The routes are described in `docs/reports.md`.

mod adjust;
pub mod admin;
mod admission;
pub mod after_action;
mod api;
mod auth;
pub mod commands;
mod console;
mod control;
mod error;
mod evidence_origin;
pub mod export;
mod injects;
mod logs;
mod matching;
pub mod pack;
pub mod pages;
mod patches;
mod portal;
mod session;
mod shell_keys;
mod state;
mod stats;
mod teams;
mod translations;
mod upload;
mod view;
mod vpn_access;
mod workbench;

pub use admission::{AdmissionFuture, AdmissionRefusal, Admitted, MAX_IMPORT_BYTES, NoTeamAdmission, TeamAdmission};
pub use api::router;
pub use control::{ControlFuture, NoServiceControl, ServiceControl};
pub use error::ReportsError;
pub use evidence_origin::{EvidenceOrigin, LINK_SECONDS as EVIDENCE_LINK_SECONDS};
pub use logs::{LogFuture, LogLine, LogSource, LogWindow, NoLogs};
pub use matching::{CaptureView, Context, MAX_CAPTURES, Strength, Suggestion, VerdictChange};
pub use state::{DEFAULT_EVIDENCE_TYPES, Now, ReportsState, Settings, SystemNow};
pub use view::{AppealView, EvidenceView, ReportView, RulingView, ScoreView};
pub use vpn_access::{NoVpnAccess, Reissued, SecretFile, VpnAccess, VpnFuture, VpnRefusal};
pub use workbench::sniff_image;
