"""The web dashboard served by ``fedimeter serve``: server-rendered pages, a little JavaScript.

Pages read through the same services as the API (the repository, ``Overview``), never SQL of
their own. Templates are Jinja2 with autoescaping; the stylesheet, the page scripts and the
vendored uPlot come from ``/static`` on the same server, and a Content-Security-Policy allows
nothing else: the dashboard works offline and asks no third-party host for anything.

``fedimeter.web.pages.install(app, settings)`` mounts it (``api.create_app`` does).
"""
