"""HTTP routes: only a health check, so a launcher can tell when the server is up."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("health", health)]
