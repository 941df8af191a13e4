"""The composition root reaches every part of every domain: a table, router, page, job,
work loop or command group that no domain declares would silently be missing from the
app, the worker, the CLI or the migrations."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import typer
from fastapi import APIRouter
from fastapi.routing import APIRoute

import toolkit
from toolkit import domains
from toolkit.domains import DOMAINS, PRODUCT
from toolkit.kit.background import JobSpec, WorkLoop
from toolkit.kit.domains import CompositionError, Domain, Product, installed
from toolkit.web import routes as web_routes


def package_modules(suffixes: tuple[str, ...]) -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(toolkit.__path__, "toolkit.") if not m.name.endswith("__main__")]
    return [importlib.import_module(n) for n in names if n.endswith(suffixes) or any(f"{s}." in n for s in suffixes)]


def test_every_domain_package_is_in_the_list():
    declared = {d.name for d in DOMAINS}
    for module in package_modules((".domain",)):
        assert module.DOMAIN in DOMAINS, f"{module.__name__}.DOMAIN is not listed in toolkit/domains.py"
    packages_with_tables = {m.__name__.split(".")[1] for m in package_modules((".models",))} - {"line"}
    assert packages_with_tables <= declared


def test_every_models_module_is_declared():
    declared = {m.__name__ for m in PRODUCT.model_modules}
    assert {m.__name__ for m in package_modules((".models",))} <= declared


def test_every_job_and_work_loop_is_declared():
    for module in package_modules((".jobs",)):
        for value in vars(module).values():
            if isinstance(getattr(value, "job_spec", None), JobSpec):
                assert PRODUCT.jobs[value.job_spec.name].func is value
            if isinstance(getattr(value, "work_loop", None), WorkLoop):
                assert PRODUCT.work_loops[value.work_loop.name].func is value


def endpoints(router: APIRouter) -> set:
    """Every endpoint a router serves, through the routers included in it."""
    found = set()
    for route in router.routes:
        if isinstance(route, APIRoute):
            found.add(route.endpoint)
        elif isinstance(getattr(route, "original_router", None), APIRouter):  # FastAPI >= 0.165
            found |= endpoints(route.original_router)
    return found


def test_every_route_and_page_is_served():
    served = set().union(*map(endpoints, [*PRODUCT.api_routers, *PRODUCT.page_routers, web_routes.pages,
                                          web_routes.system]))
    for module in package_modules((".routes", ".pages")):
        for router in (v for v in vars(module).values() if isinstance(v, APIRouter)):
            missing = endpoints(router) - served
            assert not missing, f"{module.__name__}: {sorted(e.__name__ for e in missing)} not reachable"


def test_every_command_group_is_declared():
    groups = list(PRODUCT.cli_groups.values())
    for module in package_modules((".cli",)):
        if module.__name__.startswith("toolkit.cli"):
            continue  # the whole installation's groups (db, line, llm, serve ...)
        apps = [v for v in vars(module).values() if isinstance(v, typer.Typer)]
        assert apps and all(any(a is g for g in groups) for a in apps), module.__name__


def test_assemble_installs_the_product():
    assert domains.assemble() is PRODUCT
    assert installed() is PRODUCT


def test_two_domains_cannot_declare_the_same_job():
    audit = next(d for d in DOMAINS if d.name == "audit")
    try:
        Product.of([audit, Domain("copy", jobs=list(audit.jobs))])
    except CompositionError as exc:
        assert "audit.verify_chain" in str(exc)
    else:
        raise AssertionError("a job declared twice was accepted")
