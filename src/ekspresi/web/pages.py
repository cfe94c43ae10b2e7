"""Server-rendered pages: Home, Image test, Real-time, Step by step, About, Experiments."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ekspresi import examples
from ekspresi._version import __version__
from ekspresi.runs import HISTORY_CSV
from ekspresi.web.engine import MODEL_COOKIE, LoadedModel
from ekspresi.web.experiments import (
    comparison_table,
    find_run,
    list_runs,
    run_file_headers,
    safe_run_file,
)
from ekspresi.web.i18n import COOKIE, LANGUAGES, Translator, choose_language
from ekspresi.web.modelcard import (
    CARD_IMAGES,
    DATASET_CITATIONS,
    GENERAL_LIMITATIONS,
    PAPER_CITATIONS,
    build_card,
)
from ekspresi.web.plots import learning_curves_svg, per_class_svg
from ekspresi.web.render import palette_css

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _emotion_name(name: str, t: Translator) -> str:
    """An emotion's name in the page's language (class names outside the catalogue as
    they are)."""
    key = f"emotion.{name}"
    return str(t(key)) if t.has(key) else name


TEMPLATES.env.filters["emotion_name"] = _emotion_name
#: The "Try an example" buttons (templates/_macros.html) name the shipped examples' files.
TEMPLATES.env.globals["examples"] = examples.EXAMPLES

#: (path, message key) of the navigation bar, in the order the papers' app had them.
NAV = [("/", "nav.home"), ("/image", "nav.image"), ("/realtime", "nav.realtime"),
       ("/video", "nav.video"), ("/steps", "nav.steps"), ("/about", "nav.about"),
       ("/experiments", "nav.experiments")]

router = APIRouter(include_in_schema=False)


def page_model(request: Request) -> LoadedModel:
    """The model a page shows and its API calls use: ``?model=`` (remembered in a cookie
    by :func:`render`), else the remembered one, else the served one. A page asked for a
    model that is not offered shows the served one (the footer lists the offered ones)."""
    engine = request.app.state.engine
    try:
        return engine.choose(request)
    except HTTPException:
        return engine.get()


def render(request: Request, template: str, active: str, status_code: int = 200,
           **context) -> HTMLResponse:
    engine = request.app.state.engine
    settings = request.app.state.settings
    lang = choose_language(request)
    t = Translator(lang)
    model = page_model(request)
    base = {"nav": NAV, "active": active, "engine": model, "settings": settings,
            "models": engine.choices(), "model_choice": model.choice,
            "version": __version__, "max_upload_mb": settings.max_upload_mb,
            "palette_css": palette_css(), "t": t, "lang": lang, "languages": LANGUAGES}
    response = TEMPLATES.TemplateResponse(request, template, {**base, **context},
                                          status_code=status_code)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
    if request.query_params.get("model") == model.choice:
        response.set_cookie(MODEL_COOKIE, model.choice, max_age=365 * 24 * 3600,
                            samesite="lax")
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html", "/")


@router.get("/image", response_class=HTMLResponse)
def image_test(request: Request) -> HTMLResponse:
    return render(request, "image.html", "/image")


@router.get("/realtime", response_class=HTMLResponse)
def realtime(request: Request) -> HTMLResponse:
    return render(request, "realtime.html", "/realtime")


@router.get("/video", response_class=HTMLResponse)
def video(request: Request) -> HTMLResponse:
    from ekspresi.web.videos import MAX_VIDEO_FRAMES

    return render(request, "video.html", "/video", max_video_frames=MAX_VIDEO_FRAMES)


@router.get("/steps", response_class=HTMLResponse)
def steps(request: Request) -> HTMLResponse:
    return render(request, "steps.html", "/steps")


@router.get("/examples/{name}")
def example_file(name: str) -> FileResponse:
    """The pictures and clip shipped in ``ekspresi/assets/examples`` (only their names), for
    the pages' "Try an example" buttons."""
    if name not in examples.EXAMPLES:
        raise HTTPException(404, "no such example")
    return FileResponse(examples.path(name), headers={"Cache-Control": "max-age=3600"})


@router.get("/about", response_class=HTMLResponse)
def about(request: Request) -> HTMLResponse:
    bundle = page_model(request).bundle
    card = build_card(bundle) if bundle is not None else None
    svgs = {}
    if card is not None:   # plots in the page's language and colours (web/plots.py)
        t = Translator(choose_language(request))
        svgs["learning_curves.png"] = learning_curves_svg(Path(bundle.path) / HISTORY_CSV, t)
        if card.test_sets:
            svgs["per_class.png"] = per_class_svg(card.test_sets[0].per_class, t,
                                                  lambda c: _emotion_name(c, t))
    return render(request, "about.html", "/about", card=card, svg_plots=svgs,
                  general_limitations=GENERAL_LIMITATIONS,
                  dataset_citations=DATASET_CITATIONS, paper_citations=PAPER_CITATIONS)


@router.get("/about/{image_name}")
def about_image(request: Request, image_name: str) -> FileResponse:
    """Plots shipped inside the bundle folder; only the fixed names of CARD_IMAGES."""
    bundle = page_model(request).bundle
    if bundle is None or image_name not in CARD_IMAGES:
        raise HTTPException(404, "not found")
    path = Path(bundle.path) / image_name
    if not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type="image/png")


EMPTY_CELLS = {"", "–", "-", "None", "nan"}


def _drop_empty_columns(table: tuple[list[str], list[list[str]]] | None
                        ) -> tuple[list[str], list[list[str]]] | None:
    """Columns no run has a value for only widen the table: leave them out."""
    if table is None:
        return None
    columns, rows = table
    keep = [i for i, _ in enumerate(columns)
            if i == 0 or any(str(r[i]).strip() not in EMPTY_CELLS for r in rows)]
    return [columns[i] for i in keep], [[r[i] for i in keep] for r in rows]


@router.get("/experiments", response_class=HTMLResponse)
def experiments(request: Request) -> HTMLResponse:
    runs_dir = request.app.state.settings.runs_dir
    runs = list_runs(runs_dir)
    table, table_note = comparison_table(runs)
    headline_cols = list(dict.fromkeys(k for r in runs for k in r.headline))
    return render(request, "experiments.html", "/experiments", runs=runs, runs_dir=runs_dir,
                  table=_drop_empty_columns(table), table_note=table_note,
                  headline_cols=headline_cols)


@router.get("/experiments/{run_name}/")
def run_index(request: Request, run_name: str) -> RedirectResponse:
    run = find_run(request.app.state.settings.runs_dir, run_name)
    if run is None or run.report is None:
        raise HTTPException(404, "no such run report")
    return RedirectResponse(f"/experiments/{run.name}/{run.report}")


@router.get("/experiments/{run_name}/{file_path:path}")
def run_file(request: Request, run_name: str, file_path: str) -> FileResponse:
    """A run's report and the files it links to, confined to that run's directory."""
    run = find_run(request.app.state.settings.runs_dir, run_name)
    target = safe_run_file(run, file_path) if run is not None else None
    if target is None:
        raise HTTPException(404, "not found")
    headers = run_file_headers(target)
    if target.suffix.lower() == ".html":
        # A report is a document to read: sandboxed, with a way back to the app.
        return HTMLResponse(with_back_link(target.read_text(errors="replace"), run.name),
                            headers=headers)
    return FileResponse(target, headers=headers)


#: The bar put at the top of a run report served by the app, so a reader can get back.
BACK_LINK = ('<nav style="font: 15px system-ui, sans-serif; background: #14152a; '
             'padding: .6rem 1rem; margin: 0 0 1rem" id="ekspresi-back">'
             '<a href="/experiments" style="color: #fff">&larr; ekspresi: all experiments</a>'
             '<span style="color: #c9cbe0"> &middot; run {name}</span></nav>')


def with_back_link(html: str, run_name: str) -> str:
    """The report with a link back to the Experiments page right after ``<body>`` (or at the
    start when the report has no body tag)."""
    import html as _html
    import re

    bar = BACK_LINK.format(name=_html.escape(run_name))
    match = re.search(r"<body[^>]*>", html, re.IGNORECASE)
    if match is None:
        return bar + html
    return html[:match.end()] + bar + html[match.end():]
