//! `vigil user`: the board's users file (`add`, `remove`, `list`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use vigil::sinks::board::access::users::{Role, User, Users};

/// Manage the ward board's users: who may sign in, with what role, on which wards
/// (`vigil run --board-users FILE` or `[board] users`). The board reads the file again when it
/// changes: an added user can sign in and a removed one is signed out within a second.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (the file is made, readable by its owner only, if missing). The password is
    /// read from standard input: asked twice, unechoed, on a terminal; the first line of a
    /// pipe otherwise (`printf '%s\n' "$PASSWORD" | vigil user add ...`). It is never an
    /// argument: arguments show in `ps` and the shell's history. Only its Argon2id hash is
    /// stored.
    Add {
        /// The users file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Their name: letters, digits and . _ - @; it signs their acknowledgements.
        #[arg(value_name = "NAME")]
        name: String,
        /// clinician: sees and acknowledges the patients of their wards; data-engineer: sees
        /// the counts per band per ward, no patient; researcher: sees nothing on the board
        /// (research data comes from `vigil export --research`).
        #[arg(long, value_name = "ROLE", value_parser = ["clinician", "data-engineer", "researcher"])]
        role: String,
        /// A clinician's ward, as the registry names it; repeat for more; `*` for every ward
        /// (and the patients without one).
        #[arg(long = "ward", value_name = "WARD")]
        wards: Vec<String>,
        /// Replace the user of that name (a new password, role or wards).
        #[arg(long)]
        replace: bool,
    },
    /// Remove a user: their sessions end at their next request.
    Remove {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List the users, their roles and wards (never their hashes).
    List {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(args: &UserArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        UserCommand::Add {
            file,
            name,
            role,
            wards,
            replace,
        } => {
            let role = Role::parse(role).context("--role")?;
            let mut users = existing(file)?;
            if !replace && users.get(name).is_some() {
                bail!(
                    "user {name} exists in {}: --replace sets a new password, role and wards",
                    file.display()
                );
            }
            // Checked before the password is asked for.
            vigil::sinks::board::access::users::check(name, role, wards)?;
            let password = password()?;
            let user = User::new(name, role, wards.clone(), &password)?;
            let describe = user.describe();
            users.insert(user, *replace).map_err(anyhow::Error::msg)?;
            write(file, &users)?;
            eprintln!("vigil: {name} ({describe}) can sign in to the board");
        }
        UserCommand::Remove { file, name } => {
            let mut users = existing(file)?;
            if !users.remove(name) {
                bail!("{} has no user {name}", file.display());
            }
            write(file, &users)?;
            eprintln!("vigil: removed {name}");
        }
        UserCommand::List { file } => {
            for user in Users::load(file)?.iter() {
                println!("{}\t{}", user.name, user.describe());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The users in `file`, or none when it does not exist yet.
fn existing(file: &Path) -> anyhow::Result<Users> {
    if !file.exists() {
        return Ok(Users::default());
    }
    Ok(Users::load(file)?)
}

/// Writes the users beside `file` and renames it over, so the board never reads half a file.
fn write(file: &Path, users: &Users) -> anyhow::Result<()> {
    let mut name = file.as_os_str().to_owned();
    name.push(".new");
    let next = PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(&next)
        .with_context(|| next.display().to_string())?;
    out.write_all(users.to_text().as_bytes())
        .and_then(|_| out.sync_all())
        .with_context(|| next.display().to_string())?;
    std::fs::rename(&next, file).with_context(|| file.display().to_string())?;
    Ok(())
}

/// The new password: asked twice without echo on a terminal, the first line of a pipe.
fn password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!(
                "no password on standard input: pipe it in (printf '%s\\n' \"$PASSWORD\" | vigil user add ...)"
            );
        }
        return Ok(password);
    }
    let first = unechoed("password: ")?;
    let again = unechoed("again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// A line read from the terminal with its echo off.
fn unechoed(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data, filled by tcgetattr before use; the terminal's settings
    // are restored before returning.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        bail!(
            "cannot turn the terminal's echo off: {}",
            std::io::Error::last_os_error()
        );
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
