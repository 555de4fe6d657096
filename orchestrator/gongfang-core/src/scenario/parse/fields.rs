//! Readers of values with rules of their own: the flag prefix and secret, a team's network,
//! a service's image or build folder, checker path, ports and limits, and the reports' weight
//! and evidence size.

use std::path::PathBuf;

use toml::de::DeValue;

use super::units::parse_bytes;
use super::{Tab, Walker};
use crate::scenario::model::*;
use crate::secret::Secret;

impl Walker<'_, '_> {
    pub(super) fn flag_prefix(&mut self, t: &Tab<'_, '_>) -> Option<String> {
        let s = self.string(t, "flag_prefix", false, "")?.unwrap_or_else(|| "GONGFANG".into());
        let ok =
            (1..=16).contains(&s.len()) && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            let v = t.get("flag_prefix").expect("only a given prefix can be wrong");
            self.c.error(
                &v.span(),
                format!("`flag_prefix` \"{s}\" is not a valid flag prefix"),
                Some("use 1 to 16 uppercase letters, digits or '_', e.g. \"GONGFANG\"".into()),
            );
            return None;
        }
        Some(s)
    }

    pub(super) fn secret(&mut self, t: &Tab<'_, '_>, demo: bool) -> Option<SecretSource> {
        let given: Vec<&str> =
            ["secret", "secret_env", "secret_file"].into_iter().filter(|k| t.get(k).is_some()).collect();
        match given.as_slice() {
            [] => {
                self.c.error(
                    &t.at,
                    format!("{} has no flag secret", t.name),
                    Some("add secret_env = \"GONGFANG_SECRET\" or secret_file = \"secret.txt\" (an inline secret = \"…\" is for demos only)".into()),
                );
                None
            }
            [key] => {
                let s = self.string(t, key, true, "")??;
                let v = t.get(key).expect("given");
                match *key {
                    // Whoever reads the scenario could mint flags: a real drill keeps it apart.
                    "secret" if !demo => {
                        self.c.error(
                            &v.span(),
                            "an inline `secret` is for demos only: whoever reads this file can mint flags",
                            Some(format!(
                                "move it to secret_file = \"secret.txt\" or secret_env = \"GONGFANG_SECRET\" (at least {MIN_SECRET_LEN} random bytes, e.g. from `openssl rand -hex 32`), or mark a demo drill with demo = true"
                            )),
                        );
                        None
                    }
                    "secret" if s.len() < MIN_DEMO_SECRET_LEN => {
                        self.c.error(
                            &v.span(),
                            format!("`secret` is shorter than {MIN_DEMO_SECRET_LEN} bytes"),
                            Some("use a long random string, e.g. from `openssl rand -hex 32`".into()),
                        );
                        None
                    }
                    "secret" => Some(SecretSource::Inline(Secret::new(s))),
                    "secret_env" if !self.probe.env_var_set(&s) => {
                        self.c.error(
                            &v.span(),
                            format!("environment variable {s} is not set"),
                            Some(format!("export {s}=<a long random string> before running, or use secret_file")),
                        );
                        None
                    }
                    "secret_env" => Some(SecretSource::Env(s)),
                    _ => {
                        let path = self.base.join(&s);
                        if self.probe.is_file(&path) {
                            Some(SecretSource::File(path))
                        } else {
                            self.c.error(
                                &v.span(),
                                format!("secret file `{s}` does not exist"),
                                Some(
                                    "create it (relative paths start from the scenario's folder) or fix the path"
                                        .to_owned(),
                                ),
                            );
                            None
                        }
                    }
                }
            }
            _ => {
                let v = t.get(given[1]).expect("given");
                self.c.error(
                    &v.span(),
                    format!("the secret is given more than once ({})", given.join(", ")),
                    Some("keep exactly one of secret, secret_env, secret_file".into()),
                );
                None
            }
        }
    }

    pub(super) fn network(&mut self, t: &Tab<'_, '_>) -> Option<Ipv4Net> {
        let s = self.string(t, "network", true, "network = \"10.60.1.0/24\"")??;
        match Ipv4Net::parse(&s) {
            Ok(n) if n.prefix <= 29 => Some(n),
            Ok(_) => {
                self.c.error(
                    &t.get("network").expect("read").span(),
                    format!("network {s} is too small for services"),
                    Some("use a /29 or larger, e.g. a /24".into()),
                );
                None
            }
            Err(why) => {
                self.c.error(
                    &t.get("network").expect("read").span(),
                    format!("`network` is not valid: {why}"),
                    Some("write it in CIDR notation, e.g. \"10.60.1.0/24\"".into()),
                );
                None
            }
        }
    }

    pub(super) fn image_source(&mut self, t: &Tab<'_, '_>) -> Option<ImageSource> {
        match (t.get("image"), t.get("build")) {
            (Some(_), Some(b)) => {
                self.c.error(
                    &b.span(),
                    format!("{} sets both `image` and `build`", t.name),
                    Some("keep `image` for a local image or `build` for a build folder, not both".into()),
                );
                None
            }
            (Some(_), None) => self.string(t, "image", true, "")?.map(ImageSource::Image),
            (None, Some(_)) => self.path(t, "build", PathKind::Dir).map(ImageSource::Build),
            (None, None) => {
                self.c.error(
                    &t.at,
                    format!("{} has no `image` or `build`", t.name),
                    Some("add build = \"path/to/service\" (a folder with a Dockerfile) or image = \"name:tag\"".into()),
                );
                None
            }
        }
    }

    pub(super) fn path(&mut self, t: &Tab<'_, '_>, key: &str, kind: PathKind) -> Option<PathBuf> {
        let example = match kind {
            PathKind::File => format!("{key} = \"checker/checker.wasm\""),
            PathKind::Dir => format!("{key} = \"service\""),
        };
        let s = self.string(t, key, true, &example)??;
        let path = self.base.join(&s);
        let exists = match kind {
            PathKind::File => self.probe.is_file(&path),
            PathKind::Dir => self.probe.is_dir(&path),
        };
        if !exists {
            let what = match kind {
                PathKind::File => "file",
                PathKind::Dir => "folder",
            };
            let help = match (key, kind) {
                ("checker", _) => "build the checker first (cargo build --release --target wasm32-wasip2) or fix the path; relative paths start from the scenario's folder".to_owned(),
                _ => "fix the path; relative paths start from the scenario's folder".to_owned(),
            };
            self.c.error(&t.get(key).expect("read").span(), format!("{key} {what} `{s}` does not exist"), Some(help));
            return None;
        }
        Some(path)
    }

    /// A folder inside the service's container (`code`, `data`): absolute, without `.` or `..`
    /// parts, not the root.
    pub(super) fn container_folder(&mut self, t: &Tab<'_, '_>, key: &str) -> Option<Option<String>> {
        let s = self.string(t, key, false, &format!("{key} = \"/srv/app\""))?;
        let Some(s) = s else { return Some(None) };
        let parts: Vec<&str> = s.split('/').skip(1).collect();
        let valid = s.starts_with('/')
            && !parts.is_empty()
            && parts.iter().all(|p| !p.is_empty() && *p != "." && *p != "..")
            && !s.chars().any(|c| c.is_control() || c == ':' || c == ',');
        if !valid {
            self.c.error(
                &t.get(key).expect("read").span(),
                format!("`{key}` must be a folder inside the container, like \"/srv/app\", not `{s}`"),
                Some("write an absolute path without `.`, `..`, `:` or `,` parts, and not `/` itself".into()),
            );
            return None;
        }
        Some(Some(s))
    }

    pub(super) fn ports(&mut self, t: &Tab<'_, '_>) -> Option<Vec<u16>> {
        let Some(v) = t.get("ports") else {
            self.missing(t, "ports", "ports = [8080]");
            return None;
        };
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, "ports", "an array of port numbers", Some("write it like ports = [8080]".into()));
            return None;
        };
        if items.is_empty() {
            self.c.error(
                &v.span(),
                "`ports` is empty",
                Some("list the ports attackers and the checker use, e.g. ports = [8080]".into()),
            );
            return None;
        }
        let mut ports = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let port = item
                .get_ref()
                .as_integer()
                .and_then(|i| u16::from_str_radix(i.as_str(), i.radix()).ok())
                .filter(|p| *p > 0);
            match port {
                Some(p) if ports.contains(&p) => {
                    self.c.error(&item.span(), format!("port {p} is listed twice"), None);
                    ok = false;
                }
                Some(p) => ports.push(p),
                None => {
                    self.c.error(&item.span(), "not a port number", Some("ports are integers from 1 to 65535".into()));
                    ok = false;
                }
            }
        }
        ok.then_some(ports)
    }

    pub(super) fn cpus(&mut self, t: &Tab<'_, '_>) -> Option<f64> {
        let Some(v) = t.get("cpus") else { return Some(1.0) };
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
            _ => {
                self.wrong_type(v, "cpus", "a number", Some("write it without quotes, e.g. cpus = 0.5".into()));
                return None;
            }
        };
        match n.filter(|n| *n > 0.0 && *n <= 64.0) {
            Some(n) => Some(n),
            None => {
                self.c.error(&v.span(), "`cpus` must be more than 0 and at most 64", Some("e.g. cpus = 0.5".into()));
                None
            }
        }
    }

    pub(super) fn report_weight(&mut self, t: &Tab<'_, '_>, default: f64) -> Option<f64> {
        let Some(v) = t.get("report_weight") else { return Some(default) };
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
            _ => {
                self.wrong_type(
                    v,
                    "report_weight",
                    "a number",
                    Some("write it without quotes, e.g. report_weight = 1.5".into()),
                );
                return None;
            }
        };
        match n.filter(|n| n.is_finite() && *n > 0.0 && *n <= 1000.0) {
            Some(n) => Some(n),
            None => {
                self.c.error(
                    &v.span(),
                    "`report_weight` must be more than 0 and at most 1000",
                    Some(
                        "1 adds report points as they are; to leave reports out of the score, set enabled = false"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    pub(super) fn evidence_limit(&mut self, t: &Tab<'_, '_>, default: u64) -> Option<u64> {
        let Some(s) = self.string(t, "max_evidence", false, "max_evidence = \"16MiB\"")? else { return Some(default) };
        match parse_bytes(&s).filter(|b| (1 << 10..=1 << 30).contains(b)) {
            Some(b) => Some(b),
            None => {
                self.c.error(
                    &t.get("max_evidence").expect("read").span(),
                    format!("`max_evidence` \"{s}\" is not a size between 1KiB and 1GiB"),
                    Some("write a number with a unit: KiB, MiB or GiB, e.g. \"16MiB\"".into()),
                );
                None
            }
        }
    }

    pub(super) fn memory(&mut self, t: &Tab<'_, '_>) -> Option<u64> {
        let Some(s) = self.string(t, "memory", false, "")? else { return Some(512 << 20) };
        match parse_bytes(&s).filter(|b| *b >= 8 << 20) {
            Some(b) => Some(b),
            None => {
                self.c.error(
                    &t.get("memory").expect("read").span(),
                    format!("`memory` \"{s}\" is not a size of at least 8MiB"),
                    Some("write a number with a unit: KiB, MiB or GiB, e.g. \"256MiB\"".into()),
                );
                None
            }
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum PathKind {
    File,
    Dir,
}
