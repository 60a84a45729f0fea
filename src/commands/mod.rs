//! One module per subcommand.

mod bench;
mod complete;
mod compress;
mod convert;
mod decompress;
mod eval;
mod inspect;
mod kernel_choice;
mod receptive_field;
mod sample;

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::ReceptiveField(args) => receptive_field::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Sample(args) => sample::run(&args),
        Command::Complete(args) => complete::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Compress(args) => compress::run(&args),
        Command::Decompress(args) => decompress::run(&args),
    }
}
