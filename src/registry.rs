//! The model registry: named models with immutable versions, stages that name one version
//! each, and an append-only history.
//!
//! Every registration and stage change is a [`ModelEvent`] object chained to the previous one;
//! `refs/models/NAME` names the newest, and moves only by compare-and-swap. Versions and stages
//! are derived from the chain, so the history can never disagree with the state, and the
//! registry pushes and pulls like any other ref. `model:NAME@vN`, `model:NAME@STAGE` and
//! `model:NAME` (the latest version) are accepted wherever a RUN is.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::object::{Kind, ModelEvent};
use crate::repo::{now_ms, Repo};
use crate::store::{Batch, Session};
use crate::view::{self, Node};

/// Prefix of model refs.
pub const MODEL_PREFIX: &str = "refs/models/";

/// One registered version.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Version {
    /// Version number (1, 2, ...).
    pub version: u32,
    /// The run it came from.
    pub run: ObjectId,
    /// The path in the run (`artifacts/model.pt`).
    pub path: String,
    /// The content at that path.
    pub content: ObjectId,
    /// Registration message.
    pub message: String,
    /// Who registered it.
    pub author: String,
    /// When, ms since the epoch.
    pub time: i64,
}

/// A model's state, derived from its history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Model {
    /// Name.
    pub name: String,
    /// Newest event.
    pub head: ObjectId,
    /// Versions by number.
    pub versions: BTreeMap<u32, Version>,
    /// Stage → version.
    pub stages: BTreeMap<String, u32>,
    /// Every event, oldest first, with its id.
    pub history: Vec<(ObjectId, ModelEvent)>,
    /// True when events were fetched without the runs they name (fetch of one stage).
    pub partial: bool,
}

impl Model {
    /// The newest version.
    pub fn latest(&self) -> Option<&Version> {
        self.versions.values().next_back()
    }
}

/// Which version a `model:` spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The newest version.
    Latest,
    /// A version number.
    Version(u32),
    /// A stage.
    Stage(String),
}

/// Parses `model:NAME[@vN|@STAGE]`; `None` when `spec` does not start with `model:`.
pub fn parse_spec(spec: &str) -> Option<Result<(String, Selector)>> {
    let rest = spec.strip_prefix("model:")?;
    let (name, sel) = match rest.split_once('@') {
        None => (rest, Selector::Latest),
        Some((n, s)) => {
            let sel = match s.strip_prefix('v').and_then(|d| d.parse::<u32>().ok()) {
                Some(v) => Selector::Version(v),
                None => Selector::Stage(s.to_string()),
            };
            (n, sel)
        }
    };
    Some(validate_name(name).map(|_| (name.to_string(), sel)))
}

/// Checks a model name.
pub fn validate_name(name: &str) -> Result<()> {
    crate::refs::validate("model", name)?;
    if name.contains('@') || name.contains('/') {
        return Err(Error::BadRefName {
            kind: "model",
            name: name.to_string(),
            reason: "contains '@' or '/'".into(),
        });
    }
    Ok(())
}

/// Checks a stage name: letters, digits, '-', '_' and not of the form `vN`.
pub fn validate_stage(stage: &str) -> Result<()> {
    let bad = |reason: &str| Error::BadRefName {
        kind: "stage",
        name: stage.to_string(),
        reason: reason.to_string(),
    };
    if stage.is_empty() || stage.len() > 64 {
        return Err(bad("must be 1 to 64 characters"));
    }
    if !stage
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad("use letters, digits, '-' and '_'"));
    }
    if stage
        .strip_prefix('v')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("looks like a version number"));
    }
    Ok(())
}

fn model_ref(name: &str) -> String {
    format!("{MODEL_PREFIX}{name}")
}

/// Replays a chain of events (oldest first) into a model's state.
fn replay(
    name: &str,
    head: ObjectId,
    history: Vec<(ObjectId, ModelEvent)>,
    partial: bool,
) -> Model {
    let mut versions = BTreeMap::new();
    let mut stages = BTreeMap::new();
    for (_, e) in &history {
        match e.action.as_str() {
            "register" => {
                if let (Some(v), Some(run), Some(path), Some(content)) =
                    (e.version, e.run, e.path.clone(), e.content)
                {
                    versions.insert(
                        v,
                        Version {
                            version: v,
                            run,
                            path,
                            content,
                            message: e.message.clone(),
                            author: e.author.clone(),
                            time: e.time,
                        },
                    );
                }
            }
            "stage" => {
                if let (Some(s), Some(v)) = (e.stage.clone(), e.version) {
                    stages.insert(s, v);
                }
            }
            "unstage" => {
                if let Some(s) = &e.stage {
                    stages.remove(s);
                }
            }
            _ => {}
        }
    }
    Model {
        name: name.to_string(),
        head,
        versions,
        stages,
        history,
        partial,
    }
}

/// The model called `name`, if registered.
pub fn load(session: &Session, name: &str) -> Result<Option<Model>> {
    let Some(head) = crate::refs::get_id(session, &model_ref(name))? else {
        return Ok(None);
    };
    let mut chain = Vec::new();
    let mut cur = Some(head);
    let mut partial = false;
    let mut seen = std::collections::HashSet::new();
    while let Some(id) = cur {
        if !seen.insert(id) {
            break;
        }
        partial |= session.is_partial(&id)?;
        let raw = session.read_kind(&id, Kind::Model)?;
        let e = ModelEvent::decode(&raw)
            .map_err(|source| crate::store::StoreError::Decode { id, source })?;
        cur = e.previous;
        chain.push((id, e));
    }
    chain.reverse();
    Ok(Some(replay(name, head, chain, partial)))
}

/// Every model, by name.
pub fn list(session: &Session) -> Result<Vec<Model>> {
    let mut out = Vec::new();
    for (full, _) in session.refs(MODEL_PREFIX)? {
        let name = &full[MODEL_PREFIX.len()..];
        if let Some(m) = load(session, name)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// The version `sel` names in model `name`.
pub fn resolve(session: &Session, name: &str, sel: &Selector) -> Result<Version> {
    let model = load(session, name)?.ok_or_else(|| Error::NoSuchRef {
        kind: "model",
        name: name.to_string(),
    })?;
    let v = select(&model, sel)?;
    require_fetched(session, &model, &v)?;
    Ok(v)
}

/// Checks that version `v` of `model` is in this repository: a model fetched one stage at a
/// time has the whole history but not every version's run and files.
pub fn require_fetched(session: &Session, model: &Model, v: &Version) -> Result<()> {
    if !model.partial || (session.contains(&v.run)? && session.contains(&v.content)?) {
        return Ok(());
    }
    // The remote it came from: the one whose tracking ref follows this model.
    let suffix = format!("/models/{}", model.name);
    let remote = session
        .refs("refs/remotes/")?
        .into_iter()
        .find_map(|(r, _)| {
            r.strip_prefix("refs/remotes/")?
                .strip_suffix(&suffix)
                .map(str::to_string)
        });
    Err(Error::NotFetched {
        spec: format!("{}@v{}", model.name, v.version),
        run: v.run.short(),
        remote,
    })
}

/// The version `sel` names in `model`.
pub fn select(model: &Model, sel: &Selector) -> Result<Version> {
    let name = &model.name;
    match sel {
        Selector::Latest => model
            .latest()
            .cloned()
            .ok_or_else(|| Error::Refused(format!("model {name} has no versions"))),
        Selector::Version(v) => model.versions.get(v).cloned().ok_or_else(|| {
            Error::Refused(format!(
                "model {name} has no version v{v} (latest is v{})",
                model.versions.keys().next_back().copied().unwrap_or(0)
            ))
        }),
        Selector::Stage(s) => {
            let v = model.stages.get(s).ok_or_else(|| {
                let known: Vec<&str> = model.stages.keys().map(String::as_str).collect();
                Error::Refused(format!(
                    "model {name} has no version in stage '{s}' (stages: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            model.versions.get(v).cloned().ok_or_else(|| {
                Error::Refused(format!(
                    "model {name}: stage '{s}' names v{v}, which is not in the history"
                ))
            })
        }
    }
}

/// A stage of `model` other than `stage` whose name differs from it only in case
/// (`production` beside `Production`): most likely the one that was meant.
pub fn case_twin<'m>(model: &'m Model, stage: &str) -> Option<&'m str> {
    model
        .stages
        .keys()
        .find(|k| k.as_str() != stage && k.eq_ignore_ascii_case(stage))
        .map(String::as_str)
}

/// Appends `event` to model `name`'s chain, whose head must still be `head`.
fn append(
    repo: &Repo,
    session: &Session,
    name: &str,
    head: Option<ObjectId>,
    mut event: ModelEvent,
) -> Result<ObjectId> {
    event.previous = head;
    let mut writer = repo.store().writer();
    let id = writer.put(Kind::Model, event.encode(), Some(session))?;
    let mut batch = Batch::default();
    writer.publish(session, &mut batch)?;
    writer.apply(session, batch)?;
    crate::refs::update(session, &model_ref(name), head, Some(id)).map_err(|_| {
        Error::Refused(format!(
            "model {name} was changed by someone else at the same time; nothing was recorded — check `cairn model history {name}` and try again"
        ))
    })?;
    session.flush()?;
    Ok(id)
}

fn event(repo: &Repo, name: &str, action: &str, message: &str) -> ModelEvent {
    ModelEvent {
        format: 1,
        model: name.to_string(),
        action: action.to_string(),
        version: None,
        run: None,
        path: None,
        content: None,
        stage: None,
        from_version: None,
        message: message.to_string(),
        author: repo.author(),
        time: now_ms(),
        previous: None,
    }
}

/// Registers `path` of run `run` as the next version of model `name`; returns the version.
/// Without a path, the run's artifacts folder is registered.
pub fn register(
    repo: &Repo,
    name: &str,
    run_spec: &str,
    path: Option<&str>,
    message: &str,
) -> Result<u32> {
    validate_name(name)?;
    let session = repo.store().session()?;
    let run_id = crate::revision::resolve(&session, run_spec)?;
    let run = session.read_run(&run_id)?;
    let path = match path {
        Some(p) => p.trim_matches('/').to_string(),
        None if run.artifacts.is_some() => "artifacts".to_string(),
        None => {
            return Err(Error::Refused(format!(
                "run {} has no artifacts; name the model's files with --path (for example --path data/weights)",
                run_id.short()
            )))
        }
    };
    let content = match view::lookup(&session, &run, run_spec, &path)? {
        Node::Tree(id) => id,
        Node::Leaf { id, .. } => id,
        Node::Root | Node::DataRoot => {
            return Err(Error::BadArgument {
                arg: format!("--path {path}"),
                reason: "name a file or folder inside code/, data/NAME/ or artifacts/".into(),
            })
        }
    };
    let model = load(&session, name)?;
    if model.as_ref().is_some_and(|m| m.partial) {
        return Err(Error::Refused(format!(
            "model {name} was fetched partially; fetch it whole before changing it"
        )));
    }
    let head = model.as_ref().map(|m| m.head);
    let version = model
        .as_ref()
        .and_then(|m| m.versions.keys().next_back().copied())
        .unwrap_or(0)
        + 1;
    let mut e = event(repo, name, "register", message);
    e.version = Some(version);
    e.run = Some(run_id);
    e.path = Some(path);
    e.content = Some(content);
    append(repo, &session, name, head, e)?;
    Ok(version)
}

/// Puts version `version` of model `name` into `stage`; returns the version it replaced.
pub fn set_stage(
    repo: &Repo,
    name: &str,
    version: u32,
    stage: &str,
    message: &str,
) -> Result<Option<u32>> {
    validate_stage(stage)?;
    let session = repo.store().session()?;
    let model = load(&session, name)?.ok_or_else(|| Error::NoSuchRef {
        kind: "model",
        name: name.to_string(),
    })?;
    if model.partial {
        return Err(Error::Refused(format!(
            "model {name} was fetched partially; fetch it whole before changing it"
        )));
    }
    select(&model, &Selector::Version(version))?;
    let from = model.stages.get(stage).copied();
    if from == Some(version) {
        return Err(Error::Refused(format!(
            "model {name} v{version} is already in stage '{stage}'"
        )));
    }
    let mut e = event(repo, name, "stage", message);
    e.version = Some(version);
    e.stage = Some(stage.to_string());
    e.from_version = from;
    append(repo, &session, name, Some(model.head), e)?;
    Ok(from)
}

/// Empties `stage` of model `name`; returns the version it held.
pub fn remove_stage(repo: &Repo, name: &str, stage: &str, message: &str) -> Result<u32> {
    let session = repo.store().session()?;
    let model = load(&session, name)?.ok_or_else(|| Error::NoSuchRef {
        kind: "model",
        name: name.to_string(),
    })?;
    let from = *model
        .stages
        .get(stage)
        .ok_or_else(|| Error::Refused(format!("model {name} has no version in stage '{stage}'")))?;
    let mut e = event(repo, name, "unstage", message);
    e.stage = Some(stage.to_string());
    e.from_version = Some(from);
    append(repo, &session, name, Some(model.head), e)?;
    Ok(from)
}
