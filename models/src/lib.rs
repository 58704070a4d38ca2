//! # pag-models
//!
//! Deterministic procedural indoor scenes with **exact per-pixel ground truth**, for
//! training and testing pixel-wise networks (semantic segmentation, metric depth,
//! surface normals) and as a synthetic camera (e.g. behind a ROS node).
//!
//! A [`Scene`] is a closed rectangular room (floor, four walls, ceiling) furnished with
//! simple solid primitives — tables, cabinets, pillars, balls and pictures on the walls —
//! with procedural textures, lit by one point light (hard shadows) plus ambient light.
//! [`Scene::render`] casts one ray through each pixel centre on the CPU (rows in
//! parallel with rayon) and returns a [`Frame`] with:
//!
//! * `rgb`: the shaded image,
//! * `label`: the class id of the visible surface (see [`CLASS_NAMES`], [`PALETTE`]),
//! * `depth`: metres along the camera's optical z axis (not the ray length),
//! * `normals`: the unit surface normal in the camera optical frame, facing the camera.
//!
//! Everything is a pure function of the seeds: the same seed always gives bit-identical
//! frames. [`Trajectory`] produces smooth closed camera paths for video-like sequences and
//! [`write_dataset`] writes PNG / `.npy` samples plus a `meta.json`.
//!
//! Conventions: world frame z up with the floor at z = 0; camera optical frame x right,
//! y down, z forward; [`Pose`] maps camera to world.
//!
//! ```
//! use pag_models::{Intrinsics, Scene};
//! let scene = Scene::random(7);
//! let pose = scene.random_pose(7);
//! let frame = scene.render(&Intrinsics::new(64, 48), &pose);
//! assert_eq!(frame.depth.dim(), (48, 64));
//! ```

pub mod scenes;

pub use scenes::*;
