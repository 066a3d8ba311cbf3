//! `pam-authy`: the admin CLI of pam_authy. It reuses the module's own config parser, client
//! and types, so what it reports is what the module will do.

mod demo;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pam-authy",
    version,
    about = "Administer and try the pam_authy PAM module"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local Authy sandbox and log in through real libpam with the built module.
    Demo {
        /// Answer the prompt with the sandbox's token and print the PAM result.
        #[arg(long)]
        auto: bool,
        /// The pam_authy.so to load (default: next to this program, then the system's).
        #[arg(long, value_name = "PATH")]
        module: Option<PathBuf>,
    },
    /// Run the local Authy-compatible sandbox API (same options as `authy-sandbox`).
    Sandbox {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { auto, module } => demo::run(auto, module),
        Command::Sandbox { args } => {
            let code = authy_sandbox::run_cli(args);
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pam-authy: {message}");
            ExitCode::FAILURE
        }
    }
}
