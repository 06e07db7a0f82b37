"""Checkpoints fetched once, verified, pinned.

Public checkpoint suites do not always serve what their branch names say: on the hub, 86 of
``EleutherAI/pythia-2.8b``'s 154 step branches serve the final model's weights, ``step0 = step1 = step2``
for every Pythia size, some revisions are missing, and other suites share the defect (see the project's
notes on checkpoint integrity). A study run on such revisions fine-tunes one model many times and fits a
"law" to noise. These steps stop that before any fine-tuning job starts:

1. :func:`prefetch` (where the internet is; ``snakemake prefetch``) writes a **manifest**: for each revision,
   the commit it resolves to and the weight files it should have, with their sha256. Online, the hashes come
   from the hub's API (the LFS object ids), *before* anything is downloaded, so identical revisions are
   refused without fetching gigabytes; then the missing files are downloaded (``huggingface_hub`` resumes
   partial files; transient failures are retried with back-off). Offline (``HF_HUB_OFFLINE=1``, or a cache
   filled by hand with ``hf download``), the manifest describes what the cache holds; a file that came from
   the hub is stored under its sha256 (``blobs/<sha256>``), which becomes its expected hash.
2. :func:`pin_revision` is the **integrity gate of one revision**, and what a fine-tuning job loads: it
   fetches the revision if it is missing and the hub can be reached, hashes its weight files, refuses it if
   it is missing or incomplete (no config, a missing shard, a truncated safetensors file), if a file does not
   match what the hub says it should be, or if it serves the weights of another revision the cache holds
   (unless the config accepts that group explicitly, ``allow_identical``). Its pin names the verified commit:
   jobs load that commit, never a branch name that may move, and every record carries it (``revision_sha``).
3. :func:`verify_pins` checks the model's pins together (the model-wide verdict, ``verified.json``), which
   the aggregate of the records reads.

Why one gate per revision rather than one per model: a pin is an input of every fine-tuning job of its
revision, so it must never be rewritten when nothing about its revision changed. A model-wide gate re-runs
whenever a revision is added; if its pins were rewritten from it, every finished run would be redone, and
Snakemake's ``ancient()`` (the old way around that) hides the rest of the study from the scheduler whenever an
``ancient`` input's producer re-runs (snakemake/snakemake#4166): a resume could then exit 0 with work left.
So a pin depends on its own revision only, and reads the other revisions (to refuse duplicates) without
declaring them.

Nothing here executes code from a checkpoint; loading (``transferlaw.train.hub``) uses safetensors where they
exist and torch's weights-only loader otherwise.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType
from typing import Any

from transferlaw.io import write_text
from transferlaw.train.hub import load_model, ref_path, repo_folder, resolve_cache_dir, snapshot_path
from transferlaw.train.revisions import (
    RuleError,
    by_step,
    describe_rule,
    far_targets,
    is_rule,
    nearest,
    resolution_table,
    resolve,
    step_of,
)

logger = logging.getLogger(__name__)

#: files fetched with a revision besides its weights: config, tokenizer, shard indexes
SIDE_PATTERNS = ("*.json", "merges.txt", "vocab.txt", "*.model")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used as configured; the message names the model, revisions and files."""


# ----------------------------------------------------------------------------------------------------
# what a revision consists of
# ----------------------------------------------------------------------------------------------------
def weight_files(names: Iterable[str]) -> list[str]:
    """The weight files among a revision's files: safetensors where there are any (they cannot carry
    code), otherwise PyTorch ``.bin`` files (loaded only through torch's weights-only unpickler)."""
    names = sorted(names)
    safetensors = [n for n in names if n.endswith(".safetensors")]
    if safetensors:
        return safetensors
    return [n for n in names if fnmatch.fnmatch(Path(n).name, "*.bin")]


def weights_format(files: Iterable[str]) -> str:
    return "safetensors" if any(f.endswith(".safetensors") for f in files) else "bin"


def sha256_file(path: str | Path, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _hash_all(paths: Sequence[Path]) -> list[str]:
    """sha256 of many files at once: hashlib releases the GIL, so threads overlap reading and hashing."""
    workers = max(1, min(8, os.cpu_count() or 1, len(paths)))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(sha256_file, paths))


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is unusable (truncated, corrupt header), or None: the header's largest data
    offset must end exactly at the end of the file."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > size - 8:
                return f"header of {n} bytes in a file of {size}"
            header = json.loads(fh.read(n))
    except (struct.error, ValueError) as err:
        return f"unreadable header ({err})"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    expected = 8 + n + max(ends, default=0)
    if expected != size:
        return (
            f"{size} bytes where its header needs {expected} (truncated?)"
            if size < expected
            else (f"{size} bytes where its header needs {expected}")
        )
    return None


def _blob_sha256(path: Path) -> str | None:
    """The sha256 a hub download is stored under (``blobs/<sha256>`` for LFS files), or None."""
    if not path.is_symlink():
        return None
    name = Path(os.readlink(path)).name
    return name if _SHA256.match(name) else None


# ----------------------------------------------------------------------------------------------------
# manifest: what each revision should be
# ----------------------------------------------------------------------------------------------------
def _manifest(repo_id: str, cache_dir: Path, source: str, revisions: Mapping[str, Any]) -> dict[str, Any]:
    return {"repo_id": repo_id, "cache_dir": str(cache_dir), "source": source, "revisions": dict(revisions)}


def resolve_revision(cache_dir: Path, repo_id: str, revision: str) -> str | None:
    """The commit a revision (branch name or commit) resolves to in a cache, or None if it is not there."""
    ref = ref_path(cache_dir, repo_id, revision)
    if ref.is_file():
        return ref.read_text().strip()
    if _COMMIT.match(revision) and snapshot_path(cache_dir, repo_id, revision).is_dir():
        return revision
    return None


def scan_cache(
    repo_id: str,
    revisions: Sequence[str],
    cache_dir: str | Path | None,
    pinned: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The manifest of revisions already in a Hugging Face cache (filled by `prefetch` or by hand).

    A revision in ``pinned`` (revision -> commit, from an earlier gate) keeps its commit whatever its ref
    says now. Raises :class:`CheckpointError` naming every revision that is not there, with how to fetch it.
    """
    cache = resolve_cache_dir(cache_dir)
    pinned = pinned or {}
    entries, missing = {}, []
    for rev in revisions:
        commit = pinned.get(rev) or resolve_revision(cache, repo_id, rev)
        snap = snapshot_path(cache, repo_id, commit) if commit else None
        if snap is None or not snap.is_dir():
            missing.append(rev)
            continue
        names = [p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()]
        files = {}
        for name in weight_files(names):
            path = snap / name
            files[name] = {"sha256": _blob_sha256(path), "size": None}
        entries[rev] = {"commit": commit, "files": files}
    if missing:
        raise CheckpointError(missing_message(repo_id, missing, cache))
    return _manifest(repo_id, cache, "cache", entries)


def missing_message(repo_id: str, missing: Sequence[str], cache: Path) -> str:
    return (
        f"{repo_id}: revision(s) {', '.join(missing)} not in the cache {cache}. Compute nodes read "
        f"checkpoints offline: run `snakemake prefetch` (with the same config) where the internet is, or "
        f"fill the cache by hand (`hf download {repo_id} --revision {missing[0]} --cache-dir {cache}`)"
    )


def _transient(err: BaseException | None) -> bool:
    """Worth retrying: rate limits, server errors, timeouts and dropped connections, anywhere in the chain of
    causes (huggingface_hub reports a 503 while downloading as a missing local entry caused by it)."""
    seen = 0
    while err is not None and seen < 8:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status is not None and (status == 429 or status >= 500):
            return True
        names = {c.__name__ for c in type(err).__mro__}
        if names & {"TimeoutException", "RemoteProtocolError", "ReadError", "WriteError"}:
            return True
        if isinstance(err, TimeoutError | ConnectionResetError):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def with_retries(call: Callable[[], Any], what: str, retries: int = 5, backoff: float = 2.0) -> Any:
    """``call()``, retried with exponential back-off (``backoff``, 2×, 4×, ... seconds) on transient errors.

    Errors that retrying cannot fix (a missing repo or revision, no route to the hub) are raised at once.
    """
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as err:
            if attempt == retries or not _transient(err):
                raise
            wait = backoff * 2**attempt
            logger.warning(
                "%s failed (%s: %s); retry %d/%d in %.0f s",
                what,
                type(err).__name__,
                err,
                attempt + 1,
                retries,
                wait,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")


def hub_refs(
    api: Any, repo_id: str, pinned: Mapping[str, str] | None = None, retries: int = 5
) -> dict[str, str]:
    """Every branch and tag of ``repo_id`` on the hub -> its commit, a revision in ``pinned`` (revision ->
    commit, from an earlier gate) keeping its pinned commit whatever its branch says now."""
    refs = with_retries(lambda: api.list_repo_refs(repo_id), f"listing the branches of {repo_id}", retries)
    commits = {r.name: r.target_commit for r in [*refs.branches, *refs.tags]}
    return {**commits, **(pinned or {})}


def hub_entry(api: Any, repo_id: str, revision: str, commit: str, retries: int = 5) -> dict[str, Any]:
    """One revision's weight files with the hub's LFS sha256 and sizes, and the files to fetch with them,
    listed at ``commit`` (nothing is downloaded). ``files`` is empty if the revision has no weight files."""
    tree = with_retries(
        lambda: list(api.list_repo_tree(repo_id, revision=commit, recursive=True, expand=True)),
        f"listing the files of {repo_id}@{revision}",
        retries,
    )
    files = {e.path: e for e in tree if hasattr(e, "blob_id")}
    weights = weight_files(files)
    lfs = {w: files[w].lfs.sha256 if files[w].lfs else None for w in weights}
    return {
        "commit": commit,
        "files": {w: {"sha256": lfs[w], "size": files[w].size} for w in weights},
        "fetch": sorted(weights + [n for n in files if any(fnmatch.fnmatch(n, p) for p in SIDE_PATTERNS)]),
    }


def hub_manifest(
    api: Any,
    repo_id: str,
    revisions: Sequence[str],
    pinned: Mapping[str, str] | None = None,
    retries: int = 5,
    listed: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Resolve revisions to commits and list their weight files with the hub's LFS sha256, downloading
    nothing (``listed``: revisions already listed, by :func:`hub_step_branches`). A revision in ``pinned``
    keeps its commit even if its branch has moved since (said in the log). Raises :class:`CheckpointError`
    naming revisions the hub does not have."""
    pinned = pinned or {}
    heads = hub_refs(api, repo_id, None, retries)
    for rev in revisions:
        if rev in pinned and rev in heads and heads[rev] != pinned[rev]:
            logger.warning(
                "%s: branch %s now points to %s; the study keeps its pinned commit %s (to adopt the new "
                "commit, delete the revision's pin and runs and re-run prefetch: see the README)",
                repo_id,
                rev,
                heads[rev],
                pinned[rev],
            )
    commits = {**heads, **pinned}
    unknown = [r for r in revisions if r not in commits and not _COMMIT.match(r)]
    if unknown:
        raise CheckpointError(
            f"{repo_id}: revision(s) {', '.join(unknown)} are not branches or tags on the hub"
        )
    entries = {}
    for rev in revisions:
        commit = commits.get(rev, rev)
        known = (listed or {}).get(rev)
        entry = dict(known) if known and known["commit"] == commit else None
        entry = entry or hub_entry(api, repo_id, rev, commit, retries)
        if not entry["files"]:
            raise CheckpointError(f"{repo_id}@{rev} ({commit}): no weight files (*.safetensors or *.bin)")
        entries[rev] = entry
    return entries


def hub_step_branches(
    api: Any, repo_id: str, pinned: Mapping[str, str] | None = None, retries: int = 5, workers: int = 4
) -> dict[str, dict[str, Any]]:
    """Every step branch of ``repo_id`` (``stepN``; ``main`` and other names are left out) with its weight
    files and their hub sha256, listed without downloading anything (one listing per branch, ``workers`` at
    a time: Pythia has 154). A pinned revision is listed at its pinned commit."""
    commits = {r: c for r, c in hub_refs(api, repo_id, pinned, retries).items() if step_of(r) is not None}
    logger.info("%s: listing the weight files of its %d step branches", repo_id, len(commits))
    with ThreadPoolExecutor(workers) as pool:
        found = pool.map(lambda rc: hub_entry(api, repo_id, rc[0], rc[1], retries), commits.items())
        return dict(zip(commits, found, strict=True))


# ----------------------------------------------------------------------------------------------------
# identical revisions
# ----------------------------------------------------------------------------------------------------
def identical_groups(entries: Mapping[str, Mapping[str, Any]]) -> list[tuple[list[str], str]]:
    """Groups of revisions that share weights: (revisions, what they share). Two revisions are reported
    when all their weight files are identical, or when any shard is (a partial duplicate). Files without a
    known hash are ignored here."""
    by_set: dict[tuple[str, ...], list[str]] = {}
    by_file: dict[str, list[str]] = {}
    for rev, entry in entries.items():
        hashes = [f["sha256"] for f in entry["files"].values()]
        if hashes and all(hashes):
            by_set.setdefault(tuple(sorted(hashes)), []).append(rev)
        for h in filter(None, hashes):
            by_file.setdefault(h, []).append(rev)
    groups = [(revs, "identical weights") for revs in by_set.values() if len(revs) > 1]
    whole = {frozenset(revs) for revs, _ in groups}
    for h, revs in by_file.items():
        revs = sorted(set(revs))
        if len(revs) > 1 and frozenset(revs) not in whole:
            groups.append((revs, f"a weight file with sha256 {h[:12]}…"))
    return [(sorted(revs, key=_step_key), why) for revs, why in groups]


def _step_key(rev: str) -> tuple[int, str]:
    step = step_of(rev)
    return (-1 if step is None else step, rev)


def passing_revisions(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The step revisions among ``entries`` (every step branch of a repo, or of a cache) that would pass the
    gate on their own: they have weight files, all with a known hash, and no other revision of ``entries``
    serves any of them. In step order."""
    shared = {r for revs, _ in identical_groups(entries) for r in revs}
    return by_step(
        r
        for r, e in entries.items()
        if r not in shared and e["files"] and all(f.get("sha256") for f in e["files"].values())
    )


def nearest_message(
    refused: Sequence[str],
    branches: Mapping[str, Mapping[str, Any]],
    chosen: Iterable[str],
    key: str,
    where: str,
) -> str:
    """What to choose instead of ``refused`` revisions: for each, the nearest revisions (by step, up to three
    on each side) that pass the gate among ``branches`` (every step branch ``where`` says: the hub's, or the
    cache's), leaving out those already ``chosen``; then how a rule would choose them."""
    chosen, passing = list(chosen), passing_revisions(branches)
    free = [r for r in passing if r not in chosen]
    total = sum(step_of(r) is not None for r in branches)
    lines = [
        f"Nearest revisions that pass the gate, among the {total} step branches {where} ({len(passing)} "
        "serve weights of their own):"
    ]
    for rev in by_step(refused):
        below, above = nearest(rev, free)
        lines.append(f"  {rev}: below {', '.join(below) or 'none'}; above {', '.join(above) or 'none'}")
    steps = [step_of(r) for r in chosen if step_of(r) is not None]
    example = f"{{count: {len(steps)}, first: {max(1, min(steps))}, last: {max(steps)}}}" if steps else "..."
    lines.append(
        f"List the ones you choose under {key}.revisions, or give a rule that `snakemake prefetch` resolves "
        f"to the nearest revisions that pass: {key}.revisions: {{log_spaced: {example}}}"
    )
    return "\n".join(lines)


def refuse_identical(
    repo_id: str,
    entries: Mapping[str, Mapping[str, Any]],
    allow: Sequence[Sequence[str]],
    key: str,
    only: str | None = None,
    suggest: Callable[[list[str]], str] | None = None,
) -> list[list[str]]:
    """Raise, naming the revisions, if any group of them shares weights and the config does not accept it
    (``<key>.allow_identical``); return the accepted groups. With ``only``, just the groups that contain
    that revision (the gate of one revision). ``suggest(refused)``, called only on refusal with the refused
    revisions, adds what to choose instead (:func:`nearest_message`)."""
    accepted, refused, names = [], [], []
    for revs, why in identical_groups(entries):
        if only is not None and only not in revs:
            continue
        if any(set(revs) <= set(a) for a in allow):
            accepted.append(revs)
        else:
            refused.append(f"{', '.join(revs)} ({why})")
            names += [r for r in revs if r not in names and (only is None or r == only)]
    if refused:
        message = (
            f"{repo_id}: revisions serve the same weights under different names: "
            + "; ".join(refused)
            + ". Fine-tuning them would measure one checkpoint several times. Drop the duplicates from "
            f"{key}.revisions, or, if you know and accept it, list each group under {key}.allow_identical"
        )
        if suggest is not None:
            message += ".\n" + suggest(names)
        raise CheckpointError(message)
    return accepted


# ----------------------------------------------------------------------------------------------------
# the three steps
# ----------------------------------------------------------------------------------------------------
def kept_resolution(previous: Mapping[str, Any] | None, repo_id: str, rule: Any) -> list[str] | None:
    """The revisions an earlier prefetch resolved ``rule`` to for ``repo_id`` (its manifest, ``previous``),
    or None if it resolved no rule, another rule or another repo. A resolution is kept as long as its rule
    is: re-running prefetch, even after the hub has changed, changes nothing the study planned from it."""
    if not previous or previous.get("repo_id") != repo_id or previous.get("rule") != rule:
        return None
    return [row["revision"] for row in previous.get("resolution", [])] or None


def resolve_rule(
    repo_id: str, rule: Mapping[str, Any], branches: Mapping[str, Mapping[str, Any]], key: str, where: str
) -> list[dict[str, Any]]:
    """A revision rule resolved against ``branches`` (every step branch ``where`` says, with its weight
    hashes): each target to the nearest revision that passes the gate (:func:`transferlaw.train.revisions.
    resolve`). Logs the table, and warns where a revision is far from its target (:func:`far_targets`)."""
    passing = passing_revisions(branches)
    try:
        rows = resolve(rule, passing)
    except RuleError as err:
        total = sum(step_of(r) is not None for r in branches)
        raise CheckpointError(
            f"{repo_id}: {key}.revisions: {err} ({len(passing)} of the {total} step branches {where} pass)"
        ) from None
    logger.info(
        "%s: %s resolved to revisions that pass the gate (%d of the %d step branches %s pass):\n%s",
        repo_id,
        describe_rule(rule),
        len(passing),
        sum(step_of(r) is not None for r in branches),
        where,
        "\n".join(resolution_table(rows)),
    )
    far = far_targets(rule, rows)
    if far:
        logger.warning(
            "%s: %d of %d target steps got a revision more than two grid steps away (%s): the grid resolved "
            "is not the one the rule asks for; the step branches near them serve another revision's weights",
            repo_id,
            len(far),
            len(rows),
            ", ".join(f"{r['target']} -> {r['revision']}" for r in far),
        )
    return rows


def prefetch(
    repo_id: str,
    revisions: Sequence[str] | Mapping[str, Any],
    cache_dir: str | Path | None,
    *,
    allow_identical: Sequence[Sequence[str]] = (),
    key: str = "models",
    endpoint: str | None = None,
    offline: bool | None = None,
    pinned: Mapping[str, str] | None = None,
    retries: int = 5,
    backoff: float = 2.0,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fetch every revision of ``repo_id`` into the cache (if online) and return its manifest.

    Online, the hub's hashes are compared across revisions *before* downloading (identical revisions are
    refused unless allowed, and the refusal lists the nearest revisions that pass, from every step branch's
    hashes), then each revision's weights (safetensors where it has them), config and tokenizer files are
    downloaded by commit, and ``refs/<revision>`` is written as ``hf download`` would. Offline
    (``offline=True``, or ``HF_HUB_OFFLINE`` set), nothing is downloaded: the manifest describes the cache,
    and a missing revision is an error that says how to fetch it. Revisions in ``pinned`` (revision ->
    commit, from earlier pins) keep their commit: a branch moved on the hub is not followed.

    ``revisions`` may be a rule (``{"log_spaced": {...}}``, :mod:`transferlaw.train.revisions`): it is
    resolved first, against every step branch's hashes on the hub (offline: the cache's own blob hashes),
    unless ``previous`` (the manifest an earlier prefetch wrote) resolved the same rule for the same repo,
    whose revisions are kept. The manifest then records the rule and its ``resolution`` (target, revision,
    step, ratio): the revisions the study plans.
    """
    from huggingface_hub import constants

    cache = resolve_cache_dir(cache_dir)
    rule = dict(revisions) if is_rule(revisions) else None
    names = kept_resolution(previous, repo_id, rule) if rule else list(revisions)
    rows = list(previous["resolution"]) if rule and names else None
    if rule and names:
        logger.info("%s: keeping what an earlier prefetch resolved %s to", repo_id, describe_rule(rule))
    if offline if offline is not None else constants.HF_HUB_OFFLINE:
        if rule and not names:
            branches = cache_hashes(repo_id, cache, cache_revisions(cache, repo_id), True, pinned)
            rows = resolve_rule(repo_id, rule, branches, key, f"in the cache {cache}")
            names = [r["revision"] for r in rows]
        return _with_rule(scan_cache(repo_id, names, cache, pinned), rule, rows)
    from huggingface_hub import HfApi, snapshot_download

    api = HfApi(endpoint=endpoint)
    branches: dict[str, Any] = {}

    def hub_branches() -> dict[str, Any]:  # every step branch's hashes, listed once, when needed
        if not branches:
            branches.update(hub_step_branches(api, repo_id, pinned, retries))
        return branches

    try:
        if rule and not names:
            rows = resolve_rule(repo_id, rule, hub_branches(), key, "on the hub")
            names = [r["revision"] for r in rows]
        entries = hub_manifest(api, repo_id, names, pinned, retries, listed=branches)
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(
            f"{repo_id}: cannot read its revisions from the hub ({type(err).__name__}: {err}). Run prefetch "
            "where the internet is, or set HF_HUB_OFFLINE=1 to use a cache filled by hand"
        ) from err

    def suggest(refused: list[str]) -> str:
        return nearest_message(refused, hub_branches(), names, key, "on the hub")

    refuse_identical(repo_id, entries, allow_identical, key, suggest=suggest)
    for rev, entry in entries.items():
        logger.info(
            "%s@%s: fetching %s (commit %s)", repo_id, rev, ", ".join(entry["fetch"]), entry["commit"]
        )
        with_retries(
            lambda e=entry: snapshot_download(
                repo_id, revision=e["commit"], allow_patterns=e["fetch"], cache_dir=cache, endpoint=endpoint
            ),
            f"downloading {repo_id}@{rev}",
            retries,
            backoff,
        )
        if not _COMMIT.match(rev):
            write_text(entry["commit"], ref_path(cache, repo_id, rev))
    return _with_rule(_manifest(repo_id, cache, "hub", entries), rule, rows)


def _with_rule(manifest: dict[str, Any], rule: Any, rows: Any) -> dict[str, Any]:
    """The manifest with the rule it resolved and the resolution (what the workflow plans from)."""
    return {**manifest, "rule": rule, "resolution": rows} if rule else manifest


def verify(
    manifest: Mapping[str, Any], *, allow_identical: Sequence[Sequence[str]] = (), key: str = "models"
) -> dict[str, Any]:
    """The integrity gate: hash every weight file of every revision and check it against the manifest.

    Returns the verified manifest (every file with the sha256 and size found). Raises
    :class:`CheckpointError` listing every problem: a revision whose snapshot or config is missing, a
    missing, truncated or mismatching weight file, a sharded checkpoint with a shard missing, and
    revisions with identical weights that ``allow_identical`` does not accept.
    """
    repo_id, cache = manifest["repo_id"], Path(manifest["cache_dir"])
    problems, jobs = [], []
    for rev, entry in manifest["revisions"].items():
        snap = snapshot_path(cache, repo_id, entry["commit"])
        where = f"{rev} (commit {entry['commit'][:12]})"
        if not snap.is_dir():
            problems.append(f"{where}: not in the cache {cache}; run `snakemake prefetch`")
            continue
        if not (snap / "config.json").is_file():
            problems.append(f"{where}: incomplete, no config.json")
        if not entry["files"]:
            problems.append(f"{where}: incomplete, no weight files")
        for index in snap.glob("*.index.json"):
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
            lost = sorted(s for s in shards if not (snap / s).is_file())
            if lost:
                problems.append(f"{where}: incomplete, shard(s) {', '.join(lost)} of {index.name} missing")
        for name, expected in entry["files"].items():
            path = snap / name
            if not path.is_file():
                problems.append(f"{where}: {name} missing")
                continue
            size = path.stat().st_size
            if expected.get("size") not in (None, size):
                problems.append(f"{where}: {name} has {size} bytes, the manifest says {expected['size']}")
                continue
            if name.endswith(".safetensors") and (why := safetensors_problem(path)):
                problems.append(f"{where}: {name} is incomplete or corrupt: {why}")
                continue
            jobs.append((rev, name, path, expected.get("sha256")))
    found = _hash_all([p for _, _, p, _ in jobs])
    verified = {rev: {"commit": e["commit"], "files": {}} for rev, e in manifest["revisions"].items()}
    for (rev, name, path, expected), sha in zip(jobs, found, strict=True):
        if expected and sha != expected:
            problems.append(
                f"{rev}: {name} does not match its manifest (sha256 {sha[:12]}…, expected "
                f"{expected[:12]}…): changed or corrupted since it was fetched"
            )
        verified[rev]["files"][name] = {"sha256": sha, "size": path.stat().st_size}
    if problems:
        raise CheckpointError(f"{repo_id}: integrity check failed:\n  " + "\n  ".join(problems))
    accepted = refuse_identical(repo_id, verified, allow_identical, key)
    for entry in verified.values():
        entry["format"] = weights_format(entry["files"])
    return {**_manifest(repo_id, cache, manifest["source"], verified), "accepted_identical": accepted}


def pin(verified: Mapping[str, Any], model: str, revision: str) -> dict[str, Any]:
    """What a fine-tuning job of ``model`` at ``revision`` loads: the verified commit and its weight files."""
    entry = verified["revisions"][revision]
    return {
        "model": model,
        "repo_id": verified["repo_id"],
        "cache_dir": verified["cache_dir"],
        "revision": revision,
        "commit": entry["commit"],
        "format": entry["format"],
        "files": entry["files"],
    }


def check_pin(pin: Mapping[str, Any]) -> Path:
    """Before loading: the pinned snapshot is in the cache and its weight files have the verified sizes
    (a cheap check; the gate hashed them). Returns the snapshot folder."""
    cache = Path(pin["cache_dir"])
    snap = snapshot_path(cache, pin["repo_id"], pin["commit"])
    if not snap.is_dir():
        raise CheckpointError(
            missing_message(pin["repo_id"], [f"{pin['revision']} (commit {pin['commit']})"], cache)
        )
    for name, f in pin["files"].items():
        path = snap / name
        if not path.is_file() or path.stat().st_size != f["size"]:
            raise CheckpointError(
                f"{pin['repo_id']}@{pin['revision']}: {name} changed since the integrity check "
                f"(expected {f['size']} bytes); rerun the gate (delete its output) or `snakemake prefetch`"
            )
    return snap


def load_pinned(pin: Mapping[str, Any], **kwargs: Any):
    """Load the commit a pin names, from the cache only (after :func:`check_pin`): safetensors when the
    revision has them, ``.bin`` through the weights-only unpickler otherwise."""
    check_pin(pin)
    return load_model(
        pin["repo_id"],
        pin["commit"],
        pin["cache_dir"],
        offline=True,
        use_safetensors=pin["format"] == "safetensors",
        **kwargs,
    )


def cache_revisions(cache_dir: str | Path | None, repo_id: str) -> list[str]:
    """The step branches a cache holds refs for (``refs/stepN``), in step order."""
    refs = repo_folder(resolve_cache_dir(cache_dir), repo_id) / "refs"
    return by_step(p.name for p in refs.iterdir()) if refs.is_dir() else []


def cache_hashes(
    repo_id: str,
    cache_dir: str | Path | None,
    revisions: Iterable[str],
    hash_files: bool = False,
    pinned: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """What the cache says each of ``revisions`` serves, without fetching anything: revision -> ``{"files":
    {name: {"sha256": ...}}}`` for the revisions present (a pinned one at its pinned commit). A file
    downloaded from the hub is stored under its sha256 (free to read); ``hash_files`` hashes the others (the
    workflow's own small checkpoints, or a cache copied without its blobs)."""
    cache = resolve_cache_dir(cache_dir)
    out: dict[str, dict[str, Any]] = {}
    for rev in revisions:
        commit = (pinned or {}).get(rev) or resolve_revision(cache, repo_id, rev)
        snap = snapshot_path(cache, repo_id, commit) if commit else None
        if snap is None or not snap.is_dir():
            continue
        names = weight_files(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
        files = {n: {"sha256": _blob_sha256(snap / n)} for n in names}
        if hash_files:
            todo = [n for n, f in files.items() if not f["sha256"]]
            for n, sha in zip(todo, _hash_all([snap / n for n in todo]), strict=True):
                files[n]["sha256"] = sha
        out[rev] = {"commit": commit, "files": files}
    return out


def pin_revision(
    source: Mapping[str, Any],
    revision: str,
    *,
    others: Mapping[str, Mapping[str, Any]] = MappingProxyType({}),
    allow_identical: Sequence[Sequence[str]] = (),
    offline: bool | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """The integrity gate of one revision, and its pin.

    ``source`` is the model's :func:`transferlaw.config.checkpoint_source`. A hub revision missing from the
    cache is fetched first when the hub can be reached (offline it is an error that says to run
    ``snakemake prefetch``). The revision's files are checked and hashed as :func:`verify` does, and compared
    with ``others`` (revision -> ``{"files": {name: {"sha256": ...}}}``: the other revisions' pins, and what
    :func:`cache_hashes` reads): a revision serving another's weights is refused unless a group of
    ``allow_identical`` accepts it. Returns the pin: model, repo, cache, revision, commit, format and files.
    """
    from huggingface_hub import constants

    repo_id, cache = source["repo_id"], resolve_cache_dir(source["cache_dir"])
    key = source.get("key", "models")
    is_offline = offline if offline is not None else constants.HF_HUB_OFFLINE
    if source["source"] == "hub" and not is_offline and resolve_revision(cache, repo_id, revision) is None:
        prefetch(repo_id, [revision], cache, key=key, endpoint=endpoint, offline=False)
    verified = verify(scan_cache(repo_id, [revision], cache), key=key)
    entries = {
        **{r: e for r, e in others.items() if r != revision},
        revision: verified["revisions"][revision],
    }

    def suggest(refused: list[str]) -> str:  # from what the cache holds: the gate reads no hub listing
        held = cache_hashes(repo_id, cache, cache_revisions(cache, repo_id), source["source"] == "pretrain")
        text = nearest_message(refused, {**held, **entries}, entries, key, f"in the cache {cache}")
        if source["source"] == "hub":
            text += " (`snakemake prefetch` reads every step branch the hub has)"
        return text

    refuse_identical(repo_id, entries, allow_identical, key, only=revision, suggest=suggest)
    return pin(verified, source["model"], revision)


def write_revision_pin(
    source: Mapping[str, Any],
    revision: str,
    out: str | Path,
    log: str | Path,
    *,
    revisions: Sequence[str] = (),
    pins: Mapping[str, str | Path] = MappingProxyType({}),
    allow_identical: Sequence[Sequence[str]] = (),
) -> None:
    """The pin rule: :func:`pin_revision` of ``revision`` against the model's other ``revisions`` (what the
    cache says they serve, and their ``pins``, revision -> path, where written), the pin written atomically
    and the log saying which commit and files (or why the revision was refused). Writes its log itself
    rather than redirecting output: the rule runs in Snakemake's own process, beside other jobs."""
    from transferlaw.io import write_json

    lines = []
    try:
        others = cache_hashes(
            source["repo_id"],
            source["cache_dir"],
            [r for r in revisions if r != revision],
            hash_files=source["source"] == "pretrain",  # the workflow's own checkpoints are small
        )
        for rev, path in pins.items():
            if rev != revision and Path(path).is_file():
                others[rev] = json.loads(Path(path).read_text())  # a pin says it for certain
        pinned = pin_revision(source, revision, others=others, allow_identical=allow_identical)
        write_json(pinned, out)
        lines.append(f"{source['model']}@{revision} -> {pinned['commit']}")
        lines += [f"  {n}: sha256 {f['sha256']}, {f['size']} bytes" for n, f in pinned["files"].items()]
    except Exception as err:
        lines.append(f"refused: {err}")
        raise
    finally:
        write_text("\n".join(lines) + "\n", log)


def verify_pins(source: Mapping[str, Any], pins: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The model-wide verdict from its revisions' pins (nothing is hashed again): every configured revision
    pinned, to the repo and cache of the config, and no two serving the same weights unless accepted
    (``allow_identical``). Returns what ``verified.json`` holds: repo, cache, and per revision its commit,
    format and files, and the accepted groups."""
    key = source.get("key", "models")
    missing = [r for r in source["revisions"] if r not in pins]
    if missing:
        raise CheckpointError(f"{key}: revision(s) {', '.join(missing)} have no pin")
    for rev, p in pins.items():
        if p["repo_id"] != source["repo_id"]:
            raise CheckpointError(
                f"{key}: the pin of {rev} is for {p['repo_id']}, not {source['repo_id']}; delete it to re-pin"
            )
    entries = {r: pins[r] for r in source["revisions"]}
    accepted = refuse_identical(source["repo_id"], entries, source.get("allow_identical", ()), key)
    revisions = {
        r: {"commit": p["commit"], "format": p["format"], "files": dict(p["files"])}
        for r, p in entries.items()
    }
    cache = resolve_cache_dir(source["cache_dir"])
    verdict = _manifest(source["repo_id"], cache, source["source"], revisions)
    return {"model": source["model"], **verdict, "accepted_identical": accepted}


def stale_records(records: Any, pins: Mapping[tuple[str, str], str]) -> list[str]:
    """Runs whose checkpoint is no longer the pinned one: (model, revision) -> commit in ``pins`` differs
    from the record's ``revision_sha`` (a pin was deleted and the revision re-fetched at another commit).
    Returns one line per (model, revision, commit) found."""
    keys = records[["model", "revision", "revision_sha"]].drop_duplicates().itertuples(index=False)
    return [
        f"{m}@{r}: runs made with commit {sha}, but {r} is now pinned to {pins[(m, r)]}"
        for m, r, sha in keys
        if (m, r) in pins and pins[(m, r)] != sha
    ]


__all__ = [
    "CheckpointError",
    "cache_hashes",
    "cache_revisions",
    "check_pin",
    "load_pinned",
    "hub_entry",
    "hub_manifest",
    "hub_refs",
    "hub_step_branches",
    "identical_groups",
    "kept_resolution",
    "nearest_message",
    "passing_revisions",
    "pin",
    "pin_revision",
    "prefetch",
    "refuse_identical",
    "repo_folder",
    "resolve_rule",
    "safetensors_problem",
    "scan_cache",
    "verify",
    "weight_files",
]
