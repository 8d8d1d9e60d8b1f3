"""URLs of ../shared/INTERFACE.md, plus the pages and logout endpoints of this project."""

from django.contrib import admin
from django.urls import path

from accounts.views import api, availability, csp, drf_api, logout, metrics, oidc, pages, ssf

urlpatterns = [
    path("", pages.home, name="home"),
    path("members/", pages.members, name="members"),
    path("accounts/profile/", pages.profile, name="profile"),
    path("accounts/signin/", pages.signin, name="signin"),
    path("accounts/signin/forget/", pages.forget_organisation, name="signin_forget"),
    path("accounts/sessions/end-others/", pages.end_other_sessions, name="end_other_sessions"),
    path("api/me/", api.me, name="api_me"),
    path("api/whoami/", api.whoami, name="api_whoami"),
    path("api/drf/me/", drf_api.Me.as_view(), name="api_drf_me"),
    path("api/drf/whoami/", drf_api.WhoAmI.as_view(), name="api_drf_whoami"),
    path("healthz", pages.healthz, name="healthz"),
    path("readyz", availability.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("csp-report/", csp.csp_report, name="csp_report"),
    # Browsers ask for /favicon.ico whatever the page says: no 404 on every visit.
    path("favicon.ico", pages.favicon, name="favicon"),
    path("oidc/authenticate/", oidc.AuthenticateView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", oidc.CallbackView.as_view(), name="oidc_authentication_callback"),
    path("oidc/jwks.json", oidc.site_jwks, name="oidc_site_jwks"),
    path("oidc/callback/<slug:slug>/", oidc.CallbackView.as_view(), name="oidc_provider_callback"),
    path("oidc/logout/", logout.LogoutView.as_view(), name="oidc_logout"),
    path("oidc/logout/complete/", logout.logout_complete, name="oidc_logout_complete"),
    path("oidc/backchannel-logout/", logout.backchannel_logout, name="oidc_backchannel_logout"),
    path("oidc/frontchannel-logout/", logout.frontchannel_logout, name="oidc_frontchannel_logout"),
    path("oidc/ssf/push/", ssf.ssf_push, name="oidc_ssf_push"),
    path("admin/", admin.site.urls),
]
