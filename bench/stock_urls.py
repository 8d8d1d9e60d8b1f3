"""URLs for the stock mozilla-django-oidc 5.0.2 variant of bench_signin.py."""

from django.urls import include, path

urlpatterns = [path("oidc/", include("mozilla_django_oidc.urls"))]
