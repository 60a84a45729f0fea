//! One module per subcommand.

mod receptive_field;

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::ReceptiveField(args) => receptive_field::run(&args),
    }
}
