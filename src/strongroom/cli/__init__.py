"""The ``strongroom`` command line (typer + rich).

:func:`strongroom.cli.main.build_app` assembles the top-level app from command modules,
each exposing ``register(app)``; :func:`strongroom.cli.main.main` is the console script.
Shared plumbing (data directory, opening the service, output, errors) lives in
:mod:`strongroom.cli.context`.
"""
