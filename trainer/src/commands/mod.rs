//! One module per subcommand.

pub mod bench;
pub mod check_samples;
pub mod eval;
pub mod export;
pub mod train;

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::CheckSamples(args) => check_samples::run(&args),
    }
}
