//! `gongfang account add|list|token|revoke`: the accounts of organisers, judges and observers,
//! and their API tokens. Run on the machine that holds the drill's database; each change is
//! audited under `--actor`.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::bail;
use chrono::Utc;
use gongfang_core::AccountRole;
use gongfang_reports::commands::add_account;
use serde_json::json;

use crate::migrate::DatabaseArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Who is doing this, for the audit log (default: the `USER` environment variable).
    #[arg(long, env = "USER", default_value = "organiser", global = true)]
    pub actor: String,
    #[command(subcommand)]
    pub command: Command,
}

/// `gongfang account …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Create an account. The password comes from GONGFANG_ACCOUNT_PASSWORD, or else the first
    /// line of standard input; it is stored as an argon2id hash only.
    Add {
        /// The account's login name.
        #[arg(long)]
        name: String,
        /// organiser (runs the drill), judge (rules on reports) or observer (watches, changes nothing).
        #[arg(long)]
        role: String,
        #[arg(long, env = "GONGFANG_ACCOUNT_PASSWORD", hide_env_values = true, hide = true)]
        password: Option<String>,
    },
    /// List the accounts, their roles and whether each holds an API token.
    List,
    /// Issue an API token for an account, replacing its old one; printed once, stored hashed.
    Token {
        #[arg(long)]
        name: String,
    },
    /// Revoke an account's API token: it stops working at once.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        match self {
            Command::Add { name, role, .. } => {
                f.debug_struct("Add").field("name", name).field("role", role).finish_non_exhaustive()
            }
            Command::List => f.write_str("List"),
            Command::Token { name } => f.debug_struct("Token").field("name", name).finish(),
            Command::Revoke { name } => f.debug_struct("Revoke").field("name", name).finish(),
        }
    }
}

/// The password given, or else the first line of standard input (without its line break).
pub fn password_or_stdin(given: Option<String>) -> std::io::Result<String> {
    if let Some(password) = given {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        // Refuse a database without a drill before asking for a password.
        let store = args.db.open_drill().await?;
        match args.command {
            Command::Add { name, role, password } => {
                let role = role
                    .parse::<AccountRole>()
                    .map_err(|_| anyhow::anyhow!("no role `{role}`; use organiser, judge or observer"))?;
                let password = password_or_stdin(password)?;
                print!("{}", add_account(&store, &name, role, &password, &args.actor).await?);
            }
            Command::List => {
                let accounts = store.list_accounts().await?;
                println!("{:<24} {:<10} {:<20} API token issued", "NAME", "ROLE", "CREATED");
                for a in &accounts {
                    let issued = a.api_token_issued_at.map_or("-".to_owned(), |t| t.format("%F %T").to_string());
                    let created = a.created_at.format("%F %T").to_string();
                    println!("{:<24} {:<10} {created:<20} {issued}", a.account.name, a.account.role.as_str());
                }
                println!("{} account(s)", accounts.len());
            }
            Command::Token { name } => {
                let now = Utc::now();
                let Some(token) = store.issue_api_token(&name, now).await? else {
                    bail!("no account `{name}`; `gongfang account list` shows them, `gongfang account add` creates one")
                };
                store.append_audit(now, &args.actor, "account.token", &json!({ "name": name })).await?;
                // The only time the token is shown: to standard output, for a pipe or a copy.
                println!("{}", token.expose());
                eprintln!(
                    "API token of `{name}` issued; it replaces any earlier one. It is shown only now: keep it \
                     secret, and pass it as GONGFANG_TOKEN or --token"
                );
            }
            Command::Revoke { name } => {
                if !store.revoke_api_token(&name).await? {
                    bail!("account `{name}` holds no API token (or does not exist); nothing revoked");
                }
                store.append_audit(Utc::now(), &args.actor, "account.revoke", &json!({ "name": name })).await?;
                println!("the API token of `{name}` is revoked; it stops working at once");
            }
        }
        store.close().await?;
        Ok(ExitCode::SUCCESS)
    })
}
