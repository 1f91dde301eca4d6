"""The README's examples as users copy them: its Python example runs and prints what its
comments say, and every option its `advisor` commands use exists on that command."""
import re
import shlex
from pathlib import Path

import click
import pytest

import advisor
from advisor.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    """The README's fenced blocks whose fence names `lang` ("" for a bare fence)."""
    blocks, fence, lines = [], None, []
    for line in README.splitlines():
        if line.startswith("```"):
            if fence is None:
                fence, lines = line[3:].strip(), []
            else:
                if fence == lang:
                    blocks.append("\n".join(lines) + "\n")
                fence = None
        elif fence is not None:
            lines.append(line)
    return blocks


def _e(x: float, digits: int = 3) -> str:
    """x as the README writes it: 3.24e5, 9.93e16."""
    mantissa, exp = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exp)}"


def _range(iv, digits: int = 3) -> str:
    return f"{_e(iv.low, digits)}-{_e(iv.high, digits)}"


# Each commented line of the Python example: its code, and the comment's claim from it.
CLAIMS = {
    "rec.gradient_steps, rec.train_freq, rec.width, rec.batch_size":
        lambda g: f"{g['rec'].gradient_steps}, {g['rec'].train_freq}, {g['rec'].width}, "
                  f"{g['rec'].batch_size}: utd {g['rec'].gradient_steps}/{g['rec'].train_freq}",
    "rec.predicted_data, rec.interval":
        lambda g: f"{_e(g['rec'].predicted_data)} env steps; 80% of new seed-averaged runs: "
                  f"{_range(g['rec'].interval)}",
    "rec.interval_single_seed":
        lambda g: f"80% of single-seed runs: {_range(g['rec'].interval_single_seed)}",
    "rec.predicted_compute, rec.within_budget":
        lambda g: f"{_e(g['rec'].predicted_compute)} FLOPs, {g['rec'].within_budget}",
    "rec.optimum":
        lambda g: f"utd {g['rec'].optimum.utd:.3g}, width {g['rec'].optimum.width:.1f}",
    "rec.extrapolated, rec.warnings":
        lambda g: f"{g['rec'].extrapolated}: {_e(g['rec'].params)} params is past the "
                  f"{_e(advisor.load_fit('bro/h1-crawl-v0').model.domain.params.high, 2)}",
    "rec.near_optimal":
        lambda g: f"utd {g['rec'].near_optimal.utd_low:.2g}-{g['rec'].near_optimal.utd_high:.2g}"
                  f", width {g['rec'].near_optimal.width_low:.0f}-"
                  f"{g['rec'].near_optimal.width_high:.0f}",
    'advisor.recommend(advisor.Budget(data=5e5), within_fitted=True)':
        lambda g: "utd {:g}, not {:.2g}".format(
            advisor.recommend(advisor.Budget(data=5e5), within_fitted=True).utd,
            advisor.recommend(advisor.Budget(data=5e5)).utd),
    "fit.data_to_target(utd=2, params=2.3e6, target=700)":
        lambda g: _e(g["fit"].data_to_target(utd=2, params=2.3e6, target=700)),
    "fit.interval(2, 2.3e6, 700, level=0.8)":
        lambda g: "({}, {})".format(*map(_e, g["fit"].interval(2, 2.3e6, 700, level=0.8))),
    "fit.batch_size(2, 2.3e6)":
        lambda g: f"{g['fit'].batch_size(2, 2.3e6):.0f}",
    "fit.data_to_target(2, 2.3e6, 700, batch_size=1024)":
        lambda g: "{}: a run at {:.2g}x B~ needs {:.3g}x the data".format(
            _e(g["fit"].data_to_target(2, 2.3e6, 700, batch_size=1024)),
            1024 / g["fit"].batch_size(2, 2.3e6),
            g["fit"].data_to_target(2, 2.3e6, 700, batch_size=1024)
            / g["fit"].data_to_target(2, 2.3e6, 700)),
    "fit.width(2_286_792), fit.params(512)":
        lambda g: f"{g['fit'].width(2_286_792)}, {g['fit'].params(512)}",
}


def _python_example() -> str:
    (block,) = [b for b in _blocks("python") if b.startswith("import advisor\n")]
    return block


def test_the_python_example_runs_and_its_comments_are_what_it_returns():
    """The README's first example, run as written; each commented result as it is now (a
    regenerated fit or a changed default that moves a number fails here, not for a user)."""
    block = _python_example()
    g: dict = {}
    exec(compile(block, "README.md", "exec"), g)  # noqa: S102 - our own README, as users run it
    comments = {}
    for line in block.splitlines():
        code, _, comment = line.partition("#")
        if comment:
            comments[code.strip()] = comment.strip()
    missing = [code for code in CLAIMS if code not in comments]
    assert not missing, f"README's example lost these lines (update CLAIMS): {missing}"
    wrong = {code: (claim(g), comments[code]) for code, claim in CLAIMS.items()
             if claim(g) not in comments[code]}
    assert not wrong, "README says (right) where the code returns (left): " + repr(wrong)


def _commands() -> list[list[str]]:
    """Every `advisor ...` command of the README's shell blocks, usage listing and prose, as
    tokens (a command's continuation lines joined; comments, brackets and pipes cut)."""
    usage = re.sub(r"\n\s+(?=[\[-])", " ", "\n".join(_blocks("")))  # listing's continuations
    inline = re.findall(r"`(advisor [^`]+)`", README)  # `advisor calibrate --bf16` in prose
    text = re.sub(r"\\\n\s*", " ", "\n".join(_blocks("bash") + [usage] + inline))
    text = re.sub(r"(?<=\S)\|(?=\S)", " ", text)  # ID|FILE, table|json: choices, not pipes
    out = []
    for line in text.splitlines():
        line = line.split(" #")[0]
        for part in re.split(r"&&|;|\||\$\(|\)|>", line):
            part = part.replace("[", " ").replace("]", " ")
            try:
                tokens = shlex.split(part)
            except ValueError:
                tokens = part.split()
            if len(tokens) >= 2 and tokens[0] == "advisor":
                out.append(tokens[1:])
    return out


def test_every_option_the_readme_uses_exists_on_its_command():
    ctx = click.Context(main)
    commands = _commands()
    assert len(commands) > 20
    unknown = []
    for tokens in commands:
        name = tokens[0]
        if name.startswith("-") or name in {"KIND", "..."}:
            continue
        cmd = main.get_command(ctx, name)
        if cmd is None:
            if name in {"calibrate", "plan", "report", "plot", "fit", "tidy", "regenerate"}:
                pytest.importorskip("calibration")
            unknown.append(f"advisor {name}")
            continue
        if isinstance(cmd, click.Group):  # advisor plot KIND
            sub = next((t for t in tokens[1:] if not t.startswith("-")), None)
            if sub and cmd.get_command(ctx, sub) is not None:
                cmd = cmd.get_command(ctx, sub)
        opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        opts |= {"-h", "--help"}
        for t in tokens[1:]:
            flag = t.split("=")[0]
            if flag.startswith("-") and not re.fullmatch(r"-?[0-9.e+-]+", flag) \
                    and flag not in opts:
                unknown.append(f"advisor {name} {flag}")
    assert not unknown, f"README uses options its commands do not have: {unknown}"


def test_the_fixed_utd_paragraph_is_what_recommend_returns():
    """README, "A fixed utd or width": its example as recommend() gives it now."""
    pinned, free = advisor.recommend(1e17, utd=1), advisor.recommend(1e17)
    claim = (f"gets width {pinned.width} and needs {_e(pinned.predicted_data)} env steps against "
             f"{_e(free.predicted_data)} "
             f"({100 * (pinned.predicted_data / free.predicted_data - 1):.1f}% more),")
    assert claim in " ".join(README.split()), claim
    assert pinned.within_budget and free.gradient_steps == 3 and free.train_freq == 2


def test_the_contradiction_count_is_what_recommend_says_now():
    """README, the contradiction warning: "3 of 332 answers on the 23 archive fits (6 budgets
    each of data 1e5-3e6, compute 1e15-1e18 and total 1e16-1e19)". A session's audit found it
    still saying 2 after a rounding change added one."""
    import numpy as np

    from advisor.errors import AdvisorError

    fits = [f for f in advisor.list_fits() if not f.startswith("bro-torch/")]
    answers = flagged = 0
    for fit in fits:
        for kind, low, high in (("data", 1e5, 3e6), ("compute", 1e15, 1e18),
                                ("total", 1e16, 1e19)):
            for budget in np.geomspace(low, high, 6):
                try:
                    rec = advisor.recommend(advisor.Budget(**{kind: float(budget)}), fit=fit)
                except AdvisorError:  # a budget that reaches no target: no answer
                    continue
                answers += 1
                flagged += any("the runs contradict this prediction" in w for w in rec.warnings)
    claim = (f"It is rare: {flagged} of {answers} answers on the {len(fits)} archive fits (6 "
             "budgets each of data 1e5-3e6, compute 1e15-1e18 and total 1e16-1e19)")
    assert claim in " ".join(README.split()), claim


def _anchors(text: str) -> set[str]:
    """The anchors of a markdown file's headings, as GitHub makes them."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)  # no code comments
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", prose, flags=re.M)}


def test_every_link_to_a_section_names_a_heading():
    """The contents line's links: each anchor is a heading's, as GitHub makes them."""
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert len(links) >= 10
    assert [a for a in links if a not in _anchors(README)] == []


def test_every_link_between_the_readme_and_docs_lands():
    """Links from the README into docs/ and back: the file exists, and its anchor, if any, is
    one of that file's headings."""
    root = Path(__file__).resolve().parents[1]
    broken, seen = [], 0
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#([^)]+))?\)", page.read_text("utf-8")):
            seen += 1
            path = (page.parent / target[0]).resolve()
            if not path.is_file() or (target[1] and target[1] not in _anchors(
                    path.read_text("utf-8"))):
                broken.append(f"{page.name}: {target[0]}#{target[1]}")
    assert seen >= 3
    assert broken == []
