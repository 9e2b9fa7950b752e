"""The Streamlit page of `hpc-agent ui`: widgets and rendering only; the logic is in `hpc_agent.ui.logic`.

Three tabs: run a prompt (progress per attempt, then the script, its log, validation, attempt history and
tokens), browse earlier runs (bundles under runs_dir), browse benchmark reports (from `hpc-agent report`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from hpc_agent.config import Settings, load_settings
from hpc_agent.errors import HpcAgentError
from hpc_agent.ui.logic import (
    FormError,
    RunForm,
    RunJob,
    RunView,
    backend_choices,
    list_reports,
    list_runs,
    list_sweeps,
    load_report,
    load_run_view,
    make_report,
    rag_status,
    sweeps_dir,
)

MAX_ATTEMPTS = 10


def run_tab(settings: Settings) -> None:
    choices = {c.label: c.name for c in backend_choices(settings)}
    rag_ok, rag_where = rag_status(settings)
    with st.form("run"):
        prompt = st.text_area("Prompt", key="prompt", height=110,
                              placeholder="How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?")
        left, middle, right = st.columns([3, 2, 2])
        label = left.selectbox("Backend", list(choices), key="backend",
                               help="model configs and configured backends; a local model is started on demand")
        attempts = middle.slider("Speed: attempt budget", 1, MAX_ATTEMPTS, min(settings.attempts, MAX_ATTEMPTS),
                                 key="attempts", help="fewer attempts answer sooner; more let the model repair")
        rag = right.checkbox("Retrieval (RAG)", key="rag", disabled=not rag_ok,
                             help=f"add retrieved Gammapy documentation to the prompt (index: {rag_where})"
                             if rag_ok else rag_where)
        keep = right.checkbox("Keep run folder", value=True, key="keep",
                              help=f"on: the bundle stays under {settings.runs_dir}; off: a temporary folder, "
                                   "removed once the results are on this page")
        with st.expander("Ad hoc endpoint (used when the backend is the ad hoc one)"):
            base_url = st.text_input("Base URL", key="base_url", placeholder="http://host:port/v1")
            model = st.text_input("Model name", key="model")
            api_key_env = st.text_input("API key variable", key="api_key_env",
                                        help="the *name* of the environment variable holding the key (optional)")
        job: RunJob | None = st.session_state.get("job")
        submitted = st.form_submit_button("Run", type="primary", disabled=job is not None and not job.done)
    if submitted and job is not None and not job.done:
        st.warning("a run is in progress on this page; wait for it to finish")
    elif submitted:
        form = RunForm(prompt=prompt, backend=choices[label], attempts=attempts, base_url=base_url, model=model,
                       api_key_env=api_key_env, rag=rag and rag_ok, keep=keep)
        try:
            job = st.session_state["job"] = RunJob(form, settings).start()
        except FormError as exc:
            st.warning(str(exc))
    if job is None:
        return
    if not job.done:
        _progress(job)
        return
    label, lines = job.snapshot()
    outcome = job.outcome
    assert outcome is not None
    status = st.status(label, state="complete" if outcome.view and outcome.view.status == "passed" else "error",
                       expanded=outcome.view is None)
    for line in lines:
        status.write(line)
    if outcome.error:
        st.error(outcome.error)
    if outcome.view is not None:
        render_run(outcome.view, key="current")
        st.caption(f"Run folder: {outcome.view.path}" if outcome.kept
                   else "Run folder removed (Keep run folder was off); everything above was read before.")


@st.fragment(run_every=1.0)
def _progress(job: RunJob) -> None:
    """Redrawn every second while the run's thread works; the whole page reruns once it is done."""
    if job.done:
        st.rerun()
    label, lines = job.snapshot()
    status = st.status(label, expanded=True)
    for line in lines:
        status.write(line)


def render_run(view: RunView, key: str) -> None:
    run = view.run
    headline = (f"**{view.status.upper()}** after {len(view.attempts)} attempt(s) — model `{run.model}` "
                f"(backend {run.backend}), sandbox {run.sandbox}, Gammapy {run.gammapy_version}")
    {"passed": st.success, "failed": st.warning}.get(view.status, st.error)(headline)
    if run.error:
        st.error(f"Infrastructure error: {run.error}")
    st.caption(f"Prompt: {run.prompt}")
    u = view.usage
    for col, (name, value) in zip(st.columns(5), [
            ("attempts", len(view.attempts)), ("prompt tokens", u.prompt_tokens),
            ("completion tokens", u.completion_tokens), ("reasoning tokens", u.reasoning_tokens),
            ("model time (s)", round(u.latency_s, 1))]):
        col.metric(name, value)

    shown = view.shown
    st.subheader(f"Script (attempt {shown.index})" if shown else "Script")
    if view.script is not None:
        st.code(view.script, language="python", line_numbers=True)
        st.download_button("Download script.py", view.script, file_name="script.py", mime="text/x-python",
                           on_click="ignore", key=f"download-{key}")
    else:
        st.info("No attempt returned a script.")
    if shown is None:
        return
    st.subheader(f"Execution log (attempt {shown.index})")
    ex = shown.execution
    st.caption("stdout")
    st.code((ex.stdout if ex else "") or "(empty)", language="text")
    st.caption("stderr")
    st.code((ex.stderr if ex else "") or "(empty)", language="text")

    st.subheader(f"Validation (attempt {shown.index})")
    if shown.passed:
        st.success("validation passed")
    else:
        st.error(f"validation failed: {shown.failure}" + (f" ({shown.exception})" if shown.exception else ""))
    for fix in shown.repairs:
        st.markdown(f"- repaired: {fix}")
    for err in shown.static_errors:
        st.markdown(f"- static check: {err}")
    if shown.validation.checks:
        st.dataframe([c.model_dump() for c in shown.validation.checks], hide_index=True)

    st.subheader("Attempt history")
    st.dataframe(view.history(), hide_index=True)
    for a in view.attempts:
        with st.expander(f"Attempt {a.index}: {'passed' if a.passed else a.failure}"):
            if a.feedback:
                st.caption("Error summary fed back to the model")
                st.code(a.feedback, language="text")
            else:
                st.caption("Nothing fed back after this attempt (it passed or was the last).")
            if a.script is not None:
                st.code(a.script, language="python")


def runs_tab(settings: Settings) -> None:
    runs = list_runs(settings.runs_dir)
    if not runs:
        st.info(f"No runs under {settings.runs_dir} yet.")
        return
    st.dataframe([{"folder": p.name, "status": r.get("status"), "attempts": r.get("attempts"),
                   "model": r.get("model"), "started": r.get("started_at"), "prompt": r.get("prompt")}
                  for p, r in runs], hide_index=True)
    paths = {p.name: p for p, _ in runs}
    name = st.selectbox("Open a run", list(paths), key="open_run")
    try:
        view = load_run_view(paths[name])
    except (HpcAgentError, OSError, ValueError) as exc:  # a damaged bundle, or one this version cannot read
        st.error(str(exc))
        return
    render_run(view, key="browse")


def reports_tab(settings: Settings) -> None:
    folder = sweeps_dir(settings)
    st.caption(f"Sweeps and reports under {folder} (`hpc-agent bench`, `hpc-agent report`)")
    sweeps = list_sweeps(folder)
    if sweeps:
        st.dataframe([{"sweep": s.path.name, "cells": s.cells, "report": str(s.report or "")} for s in sweeps],
                     hide_index=True)
        pending = [s.path for s in sweeps if s.report is None]
        if pending:
            names = {p.name: p for p in pending}
            name = st.selectbox("Sweep without a report", list(names), key="pending_sweep")
            if st.button("Build its report", key="build_report"):
                make_report(names[name])
                st.rerun()
    other = st.text_input("Open another report folder", key="report_folder",
                          help="any folder written by `hpc-agent report ... --out DIR`")
    reports = [str(p) for p in list_reports(folder)] + ([other.strip()] if other.strip() else [])
    if not reports:
        st.info("No benchmark reports yet.")
        return
    picked = st.selectbox("Report", reports, index=len(reports) - 1 if other.strip() else 0, key="report")
    try:
        report = load_report(Path(picked))
    except FormError as exc:
        st.warning(str(exc))
        return
    st.subheader("Models")
    st.dataframe(report.summary, hide_index=True)
    if report.per_task is not None:
        st.subheader("Per task")
        st.dataframe(report.per_task, hide_index=True)
    st.subheader("Plots")
    for plot in report.plots:
        st.image(str(plot), caption=plot.name)
    st.download_button("Download report.md", report.markdown, file_name="report.md", mime="text/markdown",
                       on_click="ignore", key="download-report")


def main() -> None:
    st.set_page_config(page_title="hpc-agent", layout="wide")
    st.title("hpc-agent")
    st.caption("Write, run, check and repair Gammapy analysis scripts with an LLM.")
    try:
        settings = load_settings()
    except HpcAgentError as exc:
        st.error(f"configuration: {exc}")
        st.stop()
    run, runs, reports = st.tabs(["Run", "Earlier runs", "Benchmark reports"])
    with run:
        run_tab(settings)
    with runs:
        runs_tab(settings)
    with reports:
        reports_tab(settings)


if __name__ == "__main__":  # `streamlit run` and AppTest execute the page as __main__
    main()
