use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod info;
mod run;
mod scenes;

/// pagrt: Pixel-wise Attentional Gating models on CPU.
#[derive(Parser)]
#[command(name = "pag", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model on an image (or a rendered scene) and write pictures and raw outputs;
    /// or, with --input, run any ONNX model on .npy tensors.
    Run(run::RunArgs),
    /// Print what the loader found in a model: classes, input, gated blocks, MultiPool, MACs.
    Info {
        /// The model (.onnx). Default: the shipped multi-task PAG model.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Time whole frames per compute mode on one thread (median, p10, p90).
    Bench(bench::BenchArgs),
    /// Render synthetic indoor scenes with exact ground truth (RGB, labels, depth, normals).
    Scenes(scenes::ScenesArgs),
}

pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Info { model } => info::info(&model.unwrap_or_else(default_model)),
        Command::Scenes(a) => scenes::scenes(a),
        Command::Bench(a) => bench::bench(a),
    }
}

/// The shipped multi-task PAG model of this checkout.
pub fn default_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/shipped/pag_multitask.onnx")
}
