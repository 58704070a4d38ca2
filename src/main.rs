//! `pag`: run PAG models on images, rendered scenes or raw tensors, and inspect them.
mod cli;
mod imageio;
mod viz;

use clap::Parser;

/// tract allocates every operator's output afresh each frame (about 20 MB per frame on the
/// shipped model); glibc's malloc hands large blocks back to the kernel and takes page faults
/// on the next frame, mimalloc keeps them. Measured: see README ("Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
