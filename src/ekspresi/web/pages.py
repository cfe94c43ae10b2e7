"""Server-rendered pages: Home, Image test, Real-time, Step by step, About, Experiments."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ekspresi import __version__
from ekspresi.web.experiments import (comparison_table, find_run, list_runs, run_file_headers,
                                      safe_run_file)
from ekspresi.web.modelcard import (CARD_IMAGES, DATASET_CITATIONS, GENERAL_LIMITATIONS,
                                    PAPER_CITATIONS, build_card)

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

#: (path, label) of the navigation bar, in the order the papers' app had them.
NAV = [("/", "Home"), ("/image", "Image test"), ("/realtime", "Real-time"),
       ("/steps", "Step by step"), ("/about", "About"), ("/experiments", "Experiments")]

router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, active: str, status_code: int = 200,
           **context) -> HTMLResponse:
    engine = request.app.state.engine
    settings = request.app.state.settings
    base = {"nav": NAV, "active": active, "engine": engine, "settings": settings,
            "version": __version__, "max_upload_mb": settings.max_upload_mb}
    return TEMPLATES.TemplateResponse(request, template, {**base, **context},
                                      status_code=status_code)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html", "/")


@router.get("/image", response_class=HTMLResponse)
def image_test(request: Request) -> HTMLResponse:
    return render(request, "image.html", "/image")


@router.get("/realtime", response_class=HTMLResponse)
def realtime(request: Request) -> HTMLResponse:
    return render(request, "realtime.html", "/realtime")


@router.get("/steps", response_class=HTMLResponse)
def steps(request: Request) -> HTMLResponse:
    return render(request, "steps.html", "/steps")


@router.get("/about", response_class=HTMLResponse)
def about(request: Request) -> HTMLResponse:
    bundle = request.app.state.engine.bundle
    card = build_card(bundle) if bundle is not None else None
    return render(request, "about.html", "/about", card=card,
                  general_limitations=GENERAL_LIMITATIONS,
                  dataset_citations=DATASET_CITATIONS, paper_citations=PAPER_CITATIONS)


@router.get("/about/{image_name}")
def about_image(request: Request, image_name: str) -> FileResponse:
    """Plots shipped inside the bundle folder; only the fixed names of CARD_IMAGES."""
    bundle = request.app.state.engine.bundle
    if bundle is None or image_name not in CARD_IMAGES:
        raise HTTPException(404, "not found")
    path = Path(bundle.path) / image_name
    if not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type="image/png")


@router.get("/experiments", response_class=HTMLResponse)
def experiments(request: Request) -> HTMLResponse:
    runs_dir = request.app.state.settings.runs_dir
    runs = list_runs(runs_dir)
    table, table_note = comparison_table(runs)
    headline_cols = list(dict.fromkeys(k for r in runs for k in r.headline))
    return render(request, "experiments.html", "/experiments", runs=runs, runs_dir=runs_dir,
                  table=table, table_note=table_note,
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
    return FileResponse(target, headers=run_file_headers(target))
