//! `cairn cat`: stream one file of a run to stdout.

use std::io::Write;

use super::Ctx;

/// Write one file of a run to stdout, streamed (RUN:PATH).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn cat HEAD:artifacts/model.pt > model.pt\n  cairn cat main~2:code/train.py | less"
)]
pub struct Args {
    /// RUN:PATH, or RUN with PATH as the next argument.
    pub spec: String,
    /// The path, when not given after a colon.
    pub path: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    // `model:NAME@STAGE:PATH` has a colon in the run part too.
    let split = match a.spec.strip_prefix("model:") {
        Some(rest) => rest
            .split_once(':')
            .map(|(r, p)| (format!("model:{r}"), p.to_string())),
        None => a
            .spec
            .split_once(':')
            .map(|(r, p)| (r.to_string(), p.to_string())),
    };
    let (run_spec, path) = match (a.path, split) {
        (Some(p), _) => (a.spec.clone(), p),
        (None, Some((r, p))) => (r, p),
        (None, None) => anyhow::bail!(
            "{}: expected RUN:PATH, for example HEAD:artifacts/model.pt",
            a.spec
        ),
    };
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let id = super::resolve(&session, &run_spec)?;
    let run = session.read_run(&id)?;
    let node = cairn::view::lookup(&session, &run, &run_spec, path.trim_matches('/'))?;
    let cairn::view::Node::Leaf {
        id: content, kind, ..
    } = node
    else {
        anyhow::bail!("{run_spec}:{path} is a folder; use `cairn ls {run_spec} {path}` to list it");
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    if kind == cairn::object::EntryKind::Symlink {
        out.write_all(&session.read_kind(&content, cairn::object::Kind::Blob)?)?;
    } else {
        // Plan in the session, stream after it: a reader that is slow to consume (a pipe)
        // must not keep other cairn processes out of the repository.
        let plan = session.content_plan(&content).map_err(|e| {
            cairn::view::not_fetched(&session, e.into(), &run_spec, path.trim_matches('/'))
        })?;
        let mut packs = std::collections::HashMap::new();
        session.open_packs(&plan, &mut packs)?;
        drop(session);
        cairn::store::write_pieces(&plan, &packs, &mut out, &|_| {})?;
    }
    out.flush()?;
    Ok(0)
}
