//! `cairn model`: the model registry.

use super::output::{number, size, time, Style};
use super::Ctx;
use cairn::registry::{self, Selector};

/// The model registry: register run outputs as immutable model versions, move them through
/// stages (staging, production, archived or any name), and read the append-only history.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn model register resnet HEAD --path artifacts/model.pt -m \"first good one\"\n  cairn model stage resnet v1 production -m \"passed eval\"\n  cairn model ls\n  cairn model show resnet@production\n  cairn model history resnet\n  cairn checkout model:resnet@production -o /srv/model\n  cairn fetch origin model:resnet@production   # on a deploy machine"
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

/// Registry actions.
#[derive(clap::Subcommand)]
pub enum Action {
    /// Register a run's output as the next version (v1, v2, ...); versions never change.
    #[command(
        after_help = "Examples:\n  cairn model register resnet HEAD --path artifacts/model.pt -m \"first good one\"\n  cairn model register resnet 3f2a   # the run's whole artifacts folder"
    )]
    Register {
        /// Model name.
        name: String,
        /// The run.
        run: String,
        /// The file or folder in the run (default: its artifacts).
        #[arg(long)]
        path: Option<String>,
        /// Message.
        #[arg(short, long, default_value = "", hide_default_value = true)]
        message: String,
    },
    /// List models: latest version and who holds each stage.
    #[command(after_help = "Examples:\n  cairn model ls\n  cairn model ls --json")]
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show a version and its lineage: NAME, NAME@vN or NAME@STAGE.
    #[command(
        after_help = "Examples:\n  cairn model show resnet\n  cairn model show resnet@v3\n  cairn model show resnet@production --json"
    )]
    Show {
        /// NAME[@vN|@STAGE].
        spec: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Put a version into a stage (one version per stage), or empty a stage with --remove.
    #[command(
        after_help = "Examples:\n  cairn model stage resnet v2 staging\n  cairn model stage resnet v2 production -m \"passed the eval\"\n  cairn model stage resnet --remove staging"
    )]
    Stage {
        /// Model name.
        name: String,
        /// The version (vN), or the stage to empty with --remove.
        version: String,
        /// The stage (staging, production, archived, or any name).
        stage: Option<String>,
        /// Empty the stage given as the second argument.
        #[arg(long)]
        remove: bool,
        /// Message.
        #[arg(short, long, default_value = "", hide_default_value = true)]
        message: String,
    },
    /// Every registration and stage change: who, when, from which version to which.
    #[command(
        after_help = "Examples:\n  cairn model history resnet\n  cairn model history resnet --json"
    )]
    History {
        /// Model name.
        name: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn parse_version(v: &str) -> anyhow::Result<u32> {
    v.strip_prefix('v')
        .unwrap_or(v)
        .parse()
        .map_err(|_| anyhow::anyhow!("{v}: expected a version such as v3"))
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let s = Style::stdout();
    match a.action {
        Action::Register {
            name,
            run,
            path,
            message,
        } => {
            let v = registry::register(&repo, &name, &run, path.as_deref(), &message)?;
            println!("{name}@v{v}");
            ctx.status(format!("Registered {name} v{v}"));
        }
        Action::Ls { json } => {
            let session = repo.store().session()?;
            let models = registry::list(&session)?;
            if json {
                let v: Vec<_> = models
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "name": m.name,
                            "latest": m.latest().map(|v| v.version),
                            "versions": m.versions.len(),
                            "stages": m.stages,
                        })
                    })
                    .collect();
                super::output::print_json(&v)?;
            } else {
                for m in models {
                    let stages: Vec<String> = m
                        .stages
                        .iter()
                        .map(|(st, v)| format!("{st}=v{v}"))
                        .collect();
                    println!(
                        "{}  latest v{}  {}",
                        s.name(&m.name),
                        m.latest().map(|v| v.version).unwrap_or(0),
                        if stages.is_empty() {
                            "(no stages)".to_string()
                        } else {
                            stages.join(" ")
                        }
                    );
                }
            }
        }
        Action::Show { spec, json } => {
            let spec = spec.strip_prefix("model:").unwrap_or(&spec).to_string();
            let (name, sel) = registry::parse_spec(&format!("model:{spec}"))
                .unwrap_or(Ok((spec.clone(), Selector::Latest)))?;
            let session = repo.store().session()?;
            let model =
                registry::load(&session, &name)?.ok_or_else(|| cairn::Error::NoSuchRef {
                    kind: "model",
                    name: name.clone(),
                })?;
            let v = registry::select(&model, &sel)?;
            registry::require_fetched(&session, &model, &v)?;
            let run = session.read_run(&v.run)?;
            let stages: Vec<&String> = model
                .stages
                .iter()
                .filter(|(_, x)| **x == v.version)
                .map(|(st, _)| st)
                .collect();
            let node = cairn::view::lookup(&session, &run, &v.run.to_hex(), &v.path)?;
            let files = cairn::view::list(&session, &run, &node, &v.path, true)?;
            if json {
                super::output::print_json(&serde_json::json!({
                    "model": name, "version": v, "stages": stages, "run_id": v.run, "run": run, "files": files,
                }))?;
                return Ok(0);
            }
            println!(
                "{} {name}@v{}{}",
                s.head("model"),
                v.version,
                if stages.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        stages
                            .iter()
                            .map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
            println!(
                "Registered: {} by {}{}",
                time(v.time),
                v.author,
                if v.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", v.message)
                }
            );
            println!("Run:        {}  {}", s.id(&v.run.to_hex()), run.subject());
            println!("Path:       {}  {}", v.path, s.dim(&v.content.short()));
            if let Some(c) = &run.code {
                let g = c
                    .git
                    .as_ref()
                    .and_then(|g| g.commit.clone())
                    .unwrap_or_else(|| "(no git)".into());
                println!(
                    "Code:       git {}{}  ({} files)",
                    &g[..g.len().min(12)],
                    if c.git.as_ref().is_some_and(|g| g.dirty) {
                        " (dirty)"
                    } else {
                        ""
                    },
                    c.files
                );
            }
            for (n, d) in &run.data {
                println!(
                    "Data:       {n}  {} files, {}  {}",
                    d.files,
                    size(d.size),
                    s.dim(&d.id.short())
                );
            }
            for (k, p) in cairn::capture::params::flatten(&run.params) {
                println!("Param:      {k} = {}", super::output::value(&p));
            }
            for (k, m) in &run.metrics {
                println!("Metric:     {k} = {}", number(m.last));
            }
            println!("\n{}", s.head("Files"));
            for f in files.iter().filter(|f| f.kind != "tree") {
                println!("  {:>10}  {}", size(f.size), f.path);
            }
        }
        Action::Stage {
            name,
            version,
            stage,
            remove,
            message,
        } => {
            if remove {
                let stage = stage.unwrap_or(version);
                let from = registry::remove_stage(&repo, &name, &stage, &message)?;
                ctx.status(format!("Removed {name} v{from} from {stage}"));
            } else {
                let Some(stage) = stage else {
                    anyhow::bail!("name the stage: cairn model stage {name} {version} production");
                };
                let v = parse_version(&version)?;
                let from = registry::set_stage(&repo, &name, v, &stage, &message)?;
                ctx.status(match from {
                    Some(f) => format!("{name}: {stage} moved from v{f} to v{v}"),
                    None => format!("{name}: v{v} is now in {stage}"),
                });
                if from.is_none() {
                    let session = repo.store().session()?;
                    if let Some(model) = registry::load(&session, &name)? {
                        if let Some(twin) = registry::case_twin(&model, &stage) {
                            eprintln!(
                                "warning: {name} now has stages '{stage}' and '{twin}', which differ only in case; stage names are case-sensitive (`cairn model stage {name} {stage} --remove` undoes this)"
                            );
                        }
                    }
                }
            }
        }
        Action::History { name, json } => {
            let session = repo.store().session()?;
            let model =
                registry::load(&session, &name)?.ok_or_else(|| cairn::Error::NoSuchRef {
                    kind: "model",
                    name: name.clone(),
                })?;
            if json {
                let v: Vec<_> = model
                    .history
                    .iter()
                    .map(|(id, e)| serde_json::json!({"id": id, "event": e}))
                    .collect();
                super::output::print_json(&v)?;
                return Ok(0);
            }
            for (_, e) in &model.history {
                let what = match e.action.as_str() {
                    "register" => format!(
                        "registered v{} from run {} ({})",
                        e.version.unwrap_or(0),
                        e.run.map(|r| r.short()).unwrap_or_default(),
                        e.path.clone().unwrap_or_default()
                    ),
                    "stage" => match e.from_version {
                        Some(f) => format!(
                            "{}: v{f} -> v{}",
                            e.stage.clone().unwrap_or_default(),
                            e.version.unwrap_or(0)
                        ),
                        None => format!(
                            "{}: -> v{}",
                            e.stage.clone().unwrap_or_default(),
                            e.version.unwrap_or(0)
                        ),
                    },
                    "unstage" => format!(
                        "{}: v{} removed",
                        e.stage.clone().unwrap_or_default(),
                        e.from_version.unwrap_or(0)
                    ),
                    other => other.to_string(),
                };
                let msg = if e.message.is_empty() {
                    String::new()
                } else {
                    format!("  \"{}\"", e.message)
                };
                println!("{}  {}  {what}{msg}", time(e.time), e.author);
            }
        }
    }
    Ok(0)
}
