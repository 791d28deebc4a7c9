//! cairn: Git-style, content-addressed versioning for machine-learning runs.
//!
//! Every training run becomes an immutable [`object::Run`] that names, by BLAKE3 id, the code it
//! was trained with, its data snapshots, params, metrics and model artifacts. Objects live in a
//! [`store::Store`]: append-only pack files indexed by one sled database under `.cairn/`.
//!
//! Module map:
//! - [`hash`]: object ids; [`object`]: blob, chunked file, tree, run, note, model and tag events,
//!   their encodings and the edges between them;
//! - [`store`]: packs, the index database, compression, the writer; [`rebuild`]: the index
//!   rebuilt from the packs;
//! - [`snapshot`]: walking folders into trees, restoring trees to folders safely;
//! - [`capture`]: git state, params and metrics files;
//! - [`repo`], [`config`], [`project`]: the repository, its configuration and `cairn.toml`;
//! - [`refs`], [`revision`], [`tags`], [`notes`], [`registry`]: names for runs, the RUN syntax,
//!   annotations and the model registry;
//! - [`commit`], [`run`]: recording a run, by hand or by wrapping a command;
//! - [`view`], [`diff`], [`history`], [`query`], [`search`], [`summary`]: reading runs — their
//!   files, differences, history, the query language, searching with it, and the query index
//!   it runs on;
//! - [`checkout`], [`fsck`], [`gc`], [`remote`]: restoring, verifying, collecting and moving
//!   runs between machines;
//! - [`error`], [`progress`], [`fault`]: errors with hints, progress reports, fault injection
//!   for the reliability tests.
//!
//! ```no_run
//! use cairn::{commit::CommitRequest, progress::NoProgress, repo::Repo};
//! # fn main() -> cairn::error::Result<()> {
//! let repo = Repo::init(std::path::Path::new("/tmp/project"))?;
//! let req = CommitRequest {
//!     cwd: repo.root().to_path_buf(),
//!     message: "baseline".into(),
//!     params: vec!["lr=0.01".into()],
//!     ..Default::default()
//! };
//! let outcome = cairn::commit::commit(&repo, &req, &NoProgress)?;
//! println!("{}", outcome.id);
//! # Ok(()) }
//! ```

pub mod capture;
pub mod checkout;
pub mod commit;
pub mod config;
pub mod diff;
pub mod error;
pub mod fault;
pub mod fsck;
pub mod gc;
pub mod hash;
pub mod history;
pub mod notes;
pub mod object;
pub mod progress;
pub mod project;
pub mod query;
pub mod rebuild;
pub mod refs;
pub mod registry;
pub mod remote;
pub mod repo;
pub mod revision;
pub mod run;
pub mod search;
pub mod snapshot;
pub mod store;
pub mod suggest;
pub mod summary;
pub mod tags;
pub mod view;

pub use error::{Error, Result};
pub use hash::ObjectId;
