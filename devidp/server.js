// Development-only OpenID Provider for the Django SSO project.
//
// NEVER deploy this: passwords are plain text in users.json, all state lives
// in memory, outgoing requests to loopback are allowed and /__dev/* lets
// anyone rotate the keys.
//
// One file, node built-ins + oidc-provider 9 (pinned). Run it with
// `node devidp/server.js` from the repo root or `node server.js` from here.
// Configuration comes from DEVIDP_* environment variables (see CONFIG below).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider, { errors as oidcErrors, interactionPolicy } from 'oidc-provider';
// The stock in-memory adapter, imported directly (oidc-provider is pinned to
// an exact version, so this internal path is stable). By default every
// Provider instance gets its own private store; we need ONE store shared by
// every instance so that rebuilding the Provider on key rotation keeps all
// sessions, grants and refresh tokens.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function envPath(name, fallback) {
  // Relative paths are taken relative to the current directory (like any
  // CLI); the defaults are next to this file so the cwd does not matter.
  const raw = process.env[name];
  return raw ? path.resolve(raw) : fallback;
}

const PORT = envInt('DEVIDP_PORT', 9000);
const SITE_URL = (process.env.DEVIDP_SITE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');

const CONFIG = {
  port: PORT,
  host: process.env.DEVIDP_HOST || '127.0.0.1',
  // The issuer host must be "localhost" while the Django site is on
  // 127.0.0.1: cookies ignore ports, so sharing a host name would make the
  // IdP and the site overwrite each other's cookies.
  issuer: (process.env.DEVIDP_ISSUER || `http://localhost:${PORT}`).replace(/\/+$/, ''),
  siteUrl: SITE_URL,
  clientId: process.env.DEVIDP_CLIENT_ID || 'django-site',
  clientSecret: process.env.DEVIDP_CLIENT_SECRET || 'dev-client-secret-change-me',
  // client_secret_basic (default), client_secret_post or private_key_jwt; with the last,
  // the client has no secret and its keys come from DEVIDP_CLIENT_JWKS_URI (default: the
  // site's /oidc/jwks.json).
  tokenAuthMethod: process.env.DEVIDP_TOKEN_AUTH_METHOD || 'client_secret_basic',
  clientJwksUri: process.env.DEVIDP_CLIENT_JWKS_URI || `${SITE_URL}/oidc/jwks.json`,
  // The site's redirect URI path for this client: /oidc/callback/ for the site's default
  // provider, /oidc/callback/<slug>/ for the others.
  callbackPath: process.env.DEVIDP_CALLBACK_PATH || '/oidc/callback/',
  // More clients of the same organisation (JSON list of {client_id, client_secret,
  // callback_path}): the same users signing in to a second provider entry of the site.
  extraClients: JSON.parse(process.env.DEVIDP_EXTRA_CLIENTS || '[]'),
  // The organisation's name on the login page, so two dev IdPs can be told apart.
  orgName: process.env.DEVIDP_ORG_NAME || '',
  accessTokenTtl: envInt('DEVIDP_ACCESS_TOKEN_TTL', 300),
  idTokenTtl: envInt('DEVIDP_ID_TOKEN_TTL', 3600),
  refreshTokenTtl: 24 * 60 * 60,
  // "0": refresh tokens are not rotated (reusable until they expire), as at providers
  // without rotation; the default rotates them and revokes the grant on reuse.
  rotateRefreshTokens: process.env.DEVIDP_ROTATE_REFRESH_TOKENS !== '0',
  // The site's API as an RFC 8707 resource: a token request naming this resource gets an
  // RFC 9068 JWT access token (typ at+jwt) for the audience below, with the API's scopes.
  apiResource: process.env.DEVIDP_API_RESOURCE || `${SITE_URL}/api/`,
  apiAudience: process.env.DEVIDP_API_AUDIENCE || process.env.DEVIDP_CLIENT_ID || 'django-site',
  apiScopes: 'api:read api:write',
  // A second client, standing for an API client of the site (a SPA, a CLI, a service): it
  // signs users in for the API and gets client-credentials tokens for itself.
  apiClientId: 'api-client',
  apiClientSecret: 'api-client-secret',
  usersFile: envPath('DEVIDP_USERS_FILE', path.join(HERE, 'users.json')),
  keysFile: envPath('DEVIDP_KEYS_FILE', path.join(HERE, '.keys.json')),
  // "0" turns off the auto-submit script on the logout confirmation page
  // (handy for browser tests that want to click "Sign out" themselves).
  logoutAutoSubmit: process.env.DEVIDP_LOGOUT_AUTOSUBMIT !== '0',
  // "1": the FAPI 2.0 Security Profile (oidc-provider's features.fapi, profile 2.0): PAR
  // required, DPoP-bound access tokens with server nonces, ES256 signing keys, client
  // assertions PS256/ES256 only. Use it with DEVIDP_TOKEN_AUTH_METHOD=private_key_jwt.
  fapi2: process.env.DEVIDP_FAPI2 === '1',
};

// Published JWKS keeps the newest key plus up to this many older ones so
// tokens signed before a rotation (id_token_hint at logout, RP caches) still
// verify.
const MAX_PUBLISHED_KEYS = 5;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function log(...parts) {
  console.log(`[devidp] ${parts.join(' ')}`);
}

function escapeHtml(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

// Write via a temp file + rename so a reader never sees half a file.
function writeFileAtomic(file, data, mode = 0o600) {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, file);
}

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(data),
    'cache-control': 'no-store',
  });
  res.end(data);
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
  });
  res.end(html);
}

async function readForm(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function page(title, body, extraHead = '') {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · devidp</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 22rem; margin: 3rem auto; padding: 0 1rem; }
  label { display: block; margin-top: 1rem; }
  input { display: block; width: 100%; box-sizing: border-box; padding: .4rem; font-size: 1rem; }
  button { margin-top: 1.2rem; padding: .5rem 1.2rem; font-size: 1rem; }
  .error { color: #b00020; font-weight: bold; }
  .note { color: #555; font-size: .85rem; margin-top: 2rem; }
  .cancel button { background: none; border: 0; padding: 0; color: #0b4fa8; text-decoration: underline; cursor: pointer; }
</style>
${extraHead}
</head>
<body>
<main>
${body}
</main>
<p class="note">Development identity provider — not for production use.</p>
</body>
</html>`;
}

// ---------------------------------------------------------------------------
// Users (users.json is re-read on every lookup so tests can swap it live)
// ---------------------------------------------------------------------------

function loadUsers() {
  const users = JSON.parse(fs.readFileSync(CONFIG.usersFile, 'utf8'));
  if (!Array.isArray(users)) throw new Error(`${CONFIG.usersFile} must contain a JSON array`);
  return users;
}

function findUserBySub(sub) {
  return loadUsers().find((user) => user.sub === sub);
}

function checkCredentials(username, password) {
  const user = loadUsers().find((candidate) => candidate.username === username);
  if (!user || typeof user.password !== 'string') return undefined;
  // Compare digests so the comparison is constant-time whatever the lengths.
  const given = crypto.createHash('sha256').update(String(password)).digest();
  const expected = crypto.createHash('sha256').update(user.password).digest();
  return crypto.timingSafeEqual(given, expected) ? user : undefined;
}

function checkOneTimeCode(user, code) {
  if (typeof user.otp !== 'string' || !user.otp) return false;
  const given = crypto.createHash('sha256').update(String(code)).digest();
  const expected = crypto.createHash('sha256').update(user.otp).digest();
  return crypto.timingSafeEqual(given, expected);
}

function userClaims(user) {
  return {
    sub: user.sub,
    email: user.email,
    email_verified: Boolean(user.email_verified),
    name: user.name,
    given_name: user.given_name,
    family_name: user.family_name,
    preferred_username: user.username,
    groups: Array.isArray(user.groups) ? user.groups : [],
  };
}

// oidc-provider's findAccount hook: undefined when the sub has disappeared
// from users.json, which makes token/refresh/userinfo requests fail.
async function findAccount(_ctx, sub) {
  const user = findUserBySub(sub);
  if (!user) return undefined;
  return {
    accountId: sub,
    // Return everything; oidc-provider filters by granted scopes/claims.
    async claims() {
      const fresh = findUserBySub(sub) || user;
      return userClaims(fresh);
    },
  };
}

// ---------------------------------------------------------------------------
// Keys (signing JWKS + cookie keys), persisted in the git-ignored keys file
// ---------------------------------------------------------------------------

function generateSigningKey() {
  const { privateKey } = CONFIG.fapi2
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(12).toString('base64url'),
    alg: CONFIG.fapi2 ? 'ES256' : 'RS256',
    use: 'sig',
  };
}

// The signing algorithm of this IdP's keys: ES256 under FAPI 2.0, else RS256.
const SIGNING_ALG = CONFIG.fapi2 ? 'ES256' : 'RS256';

function saveKeys(keys) {
  fs.mkdirSync(path.dirname(CONFIG.keysFile), { recursive: true });
  writeFileAtomic(CONFIG.keysFile, `${JSON.stringify(keys, null, 2)}\n`);
}

function loadOrCreateKeys() {
  if (fs.existsSync(CONFIG.keysFile)) {
    const keys = JSON.parse(fs.readFileSync(CONFIG.keysFile, 'utf8'));
    if (Array.isArray(keys?.jwks?.keys) && keys.jwks.keys.length && Array.isArray(keys.cookieKeys)) {
      log(`using keys from ${CONFIG.keysFile}`);
      return keys;
    }
    log(`ignoring malformed keys file ${CONFIG.keysFile}`);
  }
  const keys = {
    jwks: { keys: [generateSigningKey()] },
    cookieKeys: [crypto.randomBytes(32).toString('base64url')],
  };
  saveKeys(keys);
  log(`generated new keys into ${CONFIG.keysFile}`);
  return keys;
}

// ---------------------------------------------------------------------------
// Stats for /__dev/stats
// ---------------------------------------------------------------------------

const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'];

function emptyStats() {
  return {
    token: Object.fromEntries(GRANT_TYPES.map((g) => [g, 0])),
    token_errors: Object.fromEntries(GRANT_TYPES.map((g) => [g, 0])),
    userinfo: 0,
    introspection: 0,
    jwks: 0,
    discovery: 0,
    backchannel_logout: { sent: 0, ok: 0, failed: 0 },
    ssf: { pushed: 0, accepted: 0, refused: 0, failed: 0, polled: 0 },
  };
}

let stats = emptyStats();

function bump(bucket, key) {
  bucket[key] = (bucket[key] || 0) + 1;
}

function grantTypeOf(ctx) {
  // params are only assembled once the request got that far (e.g. not when
  // client authentication failed), so fall back to the raw parsed body.
  return ctx.oidc?.params?.grant_type || ctx.request?.body?.grant_type || 'unknown';
}

// Paths are counted in the HTTP wrapper (cheaper and independent of which
// Provider instance served the request).
function countPath(pathname) {
  if (pathname === '/me') stats.userinfo += 1;
  else if (pathname === '/token/introspection') stats.introspection += 1;
  else if (pathname === '/jwks') stats.jwks += 1;
  else if (pathname.startsWith('/.well-known/')) stats.discovery += 1;
}

// ---------------------------------------------------------------------------
// Provider configuration
// ---------------------------------------------------------------------------

// One store for every Provider instance we build (see import comment).
const sharedStore = new LRU({ maxSize: 50_000 });
const adapterFactory = (model) => new MemoryAdapter(model, sharedStore, 0);

function isLoopbackHost(hostname) {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

// oidc-provider 9 routes outgoing requests (back-channel logout here)
// through an undici dispatcher that destroys sockets connected to
// special-use addresses, loopback included (lib/helpers/fetch_request.js sets
// options.dispatcher, then calls configuration.fetch). For loopback targets we
// drop that dispatcher so the RP at http://127.0.0.1:PORT can be reached;
// anything else keeps the SSRF protection.
function devFetch(url, options) {
  if (isLoopbackHost(new URL(url).hostname)) {
    delete options.dispatcher;
  }
  return globalThis.fetch(url, options);
}

function clientMetadata({
  client_id: clientId = CONFIG.clientId,
  client_secret: clientSecret = CONFIG.clientSecret,
  callback_path: callbackPath = CONFIG.callbackPath,
} = {}) {
  const site = CONFIG.siteUrl;
  // The main client's method is DEVIDP_TOKEN_AUTH_METHOD; extra clients use a secret.
  const method = clientId === CONFIG.clientId ? CONFIG.tokenAuthMethod : 'client_secret_basic';
  const keyAuth = method === 'private_key_jwt';
  return {
    client_id: clientId,
    ...(keyAuth ? { jwks_uri: CONFIG.clientJwksUri } : { client_secret: clientSecret }),
    client_name: 'Django site (dev)',
    application_type: 'web',
    token_endpoint_auth_method: method,
    // auth_time in every ID token, not only when max_age is asked for: the site shows it
    // and judges admin access by it.
    require_auth_time: true,
    redirect_uris: [`${site}${callbackPath}`],
    post_logout_redirect_uris: [`${site}/oidc/logout/complete/`],
    backchannel_logout_uri: `${site}/oidc/backchannel-logout/`,
    backchannel_logout_session_required: true,
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    id_token_signed_response_alg: SIGNING_ALG,
    // FAPI 2.0: the main client's tokens are bound to its DPoP key and its requests pushed.
    ...(CONFIG.fapi2 && clientId === CONFIG.clientId
      ? { dpop_bound_access_tokens: true, require_pushed_authorization_requests: true }
      : {}),
  };
}

function apiClientMetadata() {
  return {
    client_id: CONFIG.apiClientId,
    client_secret: CONFIG.apiClientSecret,
    client_name: 'API client (dev)',
    application_type: 'web',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [`${CONFIG.siteUrl}/api-client/callback/`],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    // FAPI 2.0: the API client's access tokens are DPoP-bound (cnf.jkt) too.
    ...(CONFIG.fapi2
      ? { dpop_bound_access_tokens: true, id_token_signed_response_alg: SIGNING_ALG }
      : {}),
  };
}

// RFC 8707 resource indicators, with RFC 9068 JWT access tokens for the site's API.
const resourceIndicators = {
  enabled: true,
  // No resource asked for: an opaque token for userinfo, as without this feature.
  defaultResource: () => undefined,
  useGrantedResource: () => true,
  getResourceServerInfo: (_ctx, resource) => {
    if (resource !== CONFIG.apiResource) throw new oidcErrors.InvalidTarget();
    return {
      scope: CONFIG.apiScopes,
      audience: CONFIG.apiAudience,
      accessTokenTTL: CONFIG.accessTokenTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: SIGNING_ALG } },
    };
  },
};

function logoutSource(ctx, form) {
  // The provider's form carries only the xsrf token. A hidden logout=yes ends
  // the whole IdP session (not just this client's part of it), so the next
  // authorization asks for the password again. Do not name the button
  // "logout" as well: duplicate parameters are rejected.
  const fullForm = form.replace(
    '</form>',
    '<input type="hidden" name="logout" value="yes"/>'
      + '<button type="submit" id="sign-out">Sign out</button></form>',
  );
  const autoSubmit = CONFIG.logoutAutoSubmit
    ? '<script>document.getElementById("op.logoutForm").submit();</script>'
    : '';
  ctx.type = 'html';
  ctx.body = page('Sign out', `
<h1>Sign out</h1>
<p>Do you want to sign out of the development identity provider?</p>
${fullForm}
${autoSubmit}`);
}

function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<h1>Signed out</h1><p>You have been signed out.</p>');
}

function renderError(ctx, out) {
  ctx.type = 'html';
  const rows = Object.entries(out)
    .map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(value)}</dd>`)
    .join('');
  ctx.body = page('Error', `<h1>Something went wrong</h1><dl>${rows}</dl>`);
}

// Authentication strengths: "pwd" for the password alone, "mfa" with the one-time code.
const ACR_VALUES = ['pwd', 'mfa'];

// The stock policy, plus: when acr_values asks for a strength this session did not reach,
// ask the user to sign in again (a real provider's step-up), once per interaction.
function interactionPolicyWithAcrStepUp() {
  const policy = interactionPolicy.base();
  const { Check } = interactionPolicy;
  policy.get('login').checks.push(new Check(
    'acr_values_unmet',
    'the requested authentication strength was not reached',
    (ctx) => {
      const { oidc } = ctx;
      const requested = oidc.params.acr_values;
      if (!requested || !oidc.session.accountId || oidc.result?.login) {
        return Check.NO_NEED_TO_PROMPT;
      }
      return requested.split(' ').includes(oidc.acr)
        ? Check.NO_NEED_TO_PROMPT
        : Check.REQUEST_PROMPT;
    },
  ));
  return policy;
}

// FAPI 2.0 Security Profile 5.4: PS256, ES256 and EdDSA only.
const FAPI2_JWA = {
  clientAuthSigningAlgValues: ['PS256', 'ES256'],
  idTokenSigningAlgValues: ['PS256', 'ES256', 'EdDSA'],
  dPoPSigningAlgValues: ['ES256', 'EdDSA'],
};

// DPoP nonces are HMACs of the time under this secret: one per process is enough here.
const DPOP_NONCE_SECRET = crypto.randomBytes(32);

function fapi2Features() {
  if (!CONFIG.fapi2) return {};
  return {
    fapi: { enabled: true, profile: '2.0' },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
    // Every DPoP proof must carry a nonce of this server (RFC 9449 8): the first request
    // of a client is refused with use_dpop_nonce and a DPoP-Nonce header.
    dPoP: { enabled: true, nonceSecret: DPOP_NONCE_SECRET, requireNonce: () => true },
  };
}

function buildConfiguration(keys) {
  return {
    acrValues: ACR_VALUES,
    adapter: adapterFactory,
    clients: [clientMetadata(), apiClientMetadata(), ...CONFIG.extraClients.map(clientMetadata)],
    jwks: keys.jwks,
    cookies: {
      keys: keys.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    findAccount,
    claims: {
      // acr in every ID token (not only when acr_values asks): the site shows it.
      openid: ['sub', 'acr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'directory'],
    // Code flow only (the default also enables implicit/hybrid).
    responseTypes: ['code'],
    // Put the scope claims in the ID token too, so the RP does not need a
    // userinfo call to see groups.
    conformIdTokenClaims: false,
    pkce: { required: () => true }, // only S256 exists in oidc-provider 9
    // Always a refresh token for this client's code exchanges (no
    // offline_access + prompt=consent dance) ...
    issueRefreshToken: async (_ctx, client, source) => client.grantTypeAllowed('refresh_token')
      && source.kind === 'AuthorizationCode',
    // ... rotated on every use. A consumed token presented again is rejected
    // with invalid_grant and the whole grant is revoked (library behaviour).
    rotateRefreshToken: () => CONFIG.rotateRefreshTokens,
    ttl: {
      AccessToken: CONFIG.accessTokenTtl,
      ClientCredentials: CONFIG.accessTokenTtl,
      IdToken: CONFIG.idTokenTtl,
      RefreshToken: CONFIG.refreshTokenTtl,
      AuthorizationCode: 60,
      Interaction: 60 * 60,
      Session: 14 * 24 * 60 * 60,
      Grant: 14 * 24 * 60 * 60,
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      userinfo: { enabled: true },
      // RFC 7662: the site checks bearer access tokens here (active, issued to it).
      introspection: { enabled: true },
      // RFC 7009: the site revokes a session's refresh token when it ends that session.
      revocation: { enabled: true },
      resourceIndicators,
      claimsParameter: { enabled: false },
      ...fapi2Features(),
    },
    ...(CONFIG.fapi2 ? { enabledJWA: FAPI2_JWA } : {}),
    interactions: {
      policy: interactionPolicyWithAcrStepUp(),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Where people manage their account here (not a standard name: the site shows the link).
    discovery: { account_management_uri: `${CONFIG.issuer}/account` },
    // Same-origin browser flow only; no CORS needed.
    clientBasedCORS: () => false,
    renderError,
    fetch: devFetch,
  };
}

function attachEventCounters(provider) {
  provider.on('grant.success', (ctx) => bump(stats.token, grantTypeOf(ctx)));
  provider.on('grant.error', (ctx) => bump(stats.token_errors, grantTypeOf(ctx)));
  provider.on('backchannel.success', (_ctx, client) => {
    stats.backchannel_logout.sent += 1;
    stats.backchannel_logout.ok += 1;
    log(`back-channel logout to ${client.backchannelLogoutUri}: ok`);
  });
  provider.on('backchannel.error', (_ctx, err, client) => {
    stats.backchannel_logout.sent += 1;
    stats.backchannel_logout.failed += 1;
    log(`back-channel logout to ${client.backchannelLogoutUri} failed: ${err?.cause?.message || err?.message}`);
  });
  provider.on('server_error', (_ctx, err) => log(`server_error: ${err?.stack || err}`));
}

// The current Provider and its request handler. Key rotation replaces both;
// state survives because the adapter store is shared.
let provider;
let providerHandler;
let currentKeys;

function installProvider(keys) {
  currentKeys = keys;
  const next = new Provider(CONFIG.issuer, buildConfiguration(keys));
  next.proxy = false;
  attachEventCounters(next);
  provider = next;
  providerHandler = next.callback();
}

// ---------------------------------------------------------------------------
// Interaction pages (login form; consent is granted automatically)
// ---------------------------------------------------------------------------

// The account page the discovery document advertises: where a person ends their session
// at this provider (every browser that shares it would otherwise sign straight back in).
function accountPage() {
  return page('Your account', `
<h1>Your account</h1>
${CONFIG.orgName ? `<p class="org" id="org-name">${escapeHtml(CONFIG.orgName)}</p>` : ''}
<p>Signing out of an application does not always end your session here. To end it in this
browser, sign out of the identity provider.</p>
<p><a href="/session/end" id="provider-sign-out">Sign out of the identity provider</a></p>`);
}

function cancelForm(uid) {
  // A way back to the site from the wrong organisation: the site gets access_denied.
  return `
<form method="post" action="/interaction/${escapeHtml(uid)}/abort" class="cancel">
  <button type="submit" id="cancel">Cancel and go back to the application</button>
</form>`;
}

function loginPage(uid, { username = '', error = '', wantsMfa = false } = {}) {
  const errorHtml = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
  const mfaNote = wantsMfa
    ? '<p id="mfa-requested">The application asks for a second factor: enter your one-time code.</p>'
    : '';
  const otpLabel = wantsMfa
    ? 'One-time code (second factor, asked for by the application)'
    : 'One-time code (second factor, optional)';
  return page('Sign in', `
<h1>Sign in</h1>
${CONFIG.orgName ? `<p class="org" id="org-name">${escapeHtml(CONFIG.orgName)}</p>` : ''}
${errorHtml}
${mfaNote}
<form method="post" action="/interaction/${escapeHtml(uid)}" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" value="${escapeHtml(username)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <label for="otp">${otpLabel}</label>
  <input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code">
  <button type="submit">Sign in</button>
</form>
${cancelForm(uid)}`);
}

// Step-up (as Keycloak's step-up flows do): the user already has a password session here
// and the application asks for acr "mfa": only the second factor is asked for.
function codePage(uid, user, { error = '' } = {}) {
  const errorHtml = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
  return page('Second factor', `
<h1>Confirm it is you</h1>
${CONFIG.orgName ? `<p class="org" id="org-name">${escapeHtml(CONFIG.orgName)}</p>` : ''}
${errorHtml}
<p id="mfa-requested">The application asks for a second factor. You are signed in as
<strong id="code-user">${escapeHtml(user.username)}</strong>: enter your one-time code.</p>
<form method="post" action="/interaction/${escapeHtml(uid)}" autocomplete="off" id="code-form">
  <input type="hidden" name="step" value="code">
  <label for="otp">One-time code (second factor, required)</label>
  <input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" required autofocus>
  <button type="submit">Confirm</button>
</form>
${cancelForm(uid)}`);
}

// Only the second factor is missing: a password session exists and acr_values is all
// that asked for a new login (not max_age, not prompt=login, not another user).
function stepUpUser(details) {
  const wantsMfa = (details.params.acr_values || '').split(' ').includes('mfa');
  const reasons = details.prompt.reasons || [];
  const accountId = details.session?.accountId;
  if (!wantsMfa || !accountId || !reasons.length) return undefined;
  if (!reasons.every((reason) => reason === 'acr_values_unmet')) return undefined;
  const user = findUserBySub(accountId);
  return user && typeof user.otp === 'string' && user.otp ? user : undefined;
}

async function finishStepUp(req, res, uid, user) {
  const form = await readForm(req);
  if (!checkOneTimeCode(user, form.get('otp') || '')) {
    sendHtml(res, 200, codePage(uid, user, { error: 'Invalid one-time code' }));
    return;
  }
  log(`step-up ok: ${user.username} (acr mfa)`);
  await provider.interactionFinished(req, res, {
    login: { accountId: user.sub, acr: 'mfa', amr: ['pwd', 'otp'] },
  }, { mergeWithLastSubmission: false });
}

async function abortInteraction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Error', '<h1>Interaction mismatch</h1><p>Start the sign-in again.</p>'));
    return;
  }
  log('sign-in cancelled by the user');
  await provider.interactionFinished(req, res, {
    error: 'access_denied',
    error_description: 'The user cancelled the sign-in.',
  }, { mergeWithLastSubmission: false });
}

// Give the client everything it asked for (dev IdP: no consent screen).
async function grantEverything(details) {
  const { prompt: { details: missing }, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  // Only hand the id back when it is a new grant (same as the library's
  // example); an existing one was updated in place.
  return details.grantId ? {} : { grantId };
}

async function handleInteraction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Error', '<h1>Interaction mismatch</h1><p>Start the sign-in again.</p>'));
    return;
  }

  if (details.prompt.name === 'consent') {
    const consent = await grantEverything(details);
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    return;
  }

  if (details.prompt.name !== 'login') {
    sendHtml(res, 400, page('Error', `<h1>Unsupported prompt</h1><p>${escapeHtml(details.prompt.name)}</p>`));
    return;
  }

  const wantsMfa = (details.params.acr_values || '').split(' ').includes('mfa');
  const stepUp = stepUpUser(details);
  if (stepUp) {
    if (req.method === 'GET') sendHtml(res, 200, codePage(uid, stepUp));
    else await finishStepUp(req, res, uid, stepUp);
    return;
  }
  if (req.method === 'GET') {
    sendHtml(res, 200, loginPage(uid, { wantsMfa }));
    return;
  }

  const form = await readForm(req);
  const username = form.get('username') || '';
  const user = checkCredentials(username, form.get('password') || '');
  if (!user) {
    sendHtml(res, 200, loginPage(uid, { username, wantsMfa, error: 'Invalid username or password' }));
    return;
  }
  // The demo second factor: a fixed code per user in users.json ("otp"). No code: "pwd".
  const otp = form.get('otp') || '';
  if (otp && !checkOneTimeCode(user, otp)) {
    sendHtml(res, 200, loginPage(uid, { username, wantsMfa, error: 'Invalid one-time code' }));
    return;
  }
  const acr = otp ? 'mfa' : 'pwd';
  log(`login ok: ${user.username} (acr ${acr})`);
  await provider.interactionFinished(req, res, {
    login: { accountId: user.sub, acr, amr: otp ? ['pwd', 'otp'] : ['pwd'] },
  }, { mergeWithLastSubmission: false });
}

// ---------------------------------------------------------------------------
// Dev control endpoints
// ---------------------------------------------------------------------------

function rotateKeys() {
  const keys = loadOrCreateKeys();
  const fresh = generateSigningKey();
  // New key first: oidc-provider signs with the first matching key.
  keys.jwks.keys = [fresh, ...keys.jwks.keys].slice(0, MAX_PUBLISHED_KEYS);
  saveKeys(keys);
  installProvider(keys);
  log(`rotated signing key, new kid ${fresh.kid}`);
  return fresh.kid;
}

// The provider's clock, shifted by /__dev/clock?offset=SECONDS (fault tests: a provider
// whose clock is ahead). oidc-provider stamps iat/exp from Date.now().
const realNow = Date.now.bind(Date);
let clockOffsetSeconds = Number(process.env.DEVIDP_CLOCK_OFFSET || 0);
Date.now = () => realNow() + clockOffsetSeconds * 1000;

function setClock(req) {
  const offset = Number(new URL(req.url, 'http://devidp.invalid').searchParams.get('offset') || 0);
  clockOffsetSeconds = Number.isFinite(offset) ? offset : 0;
  log(`clock offset now ${clockOffsetSeconds} s`);
  return { offset: clockOffsetSeconds };
}

const DEV_ROUTES = {
  '/__dev/clock': { method: 'POST', run: setClock },
  '/__dev/stats': { method: 'GET', run: () => stats },
  '/__dev/stats/reset': {
    method: 'POST',
    run: () => {
      stats = emptyStats();
      return stats;
    },
  },
  '/__dev/rotate-keys': { method: 'POST', run: () => ({ kid: rotateKeys() }) },
  // Forget every Shared Signals stream (tests start from none).
  '/__dev/ssf/reset': {
    method: 'POST',
    run: () => {
      streams.clear();
      return { streams: 0 };
    },
  },
};

function handleDev(req, res, pathname) {
  const routeDef = DEV_ROUTES[pathname.replace(/\/+$/, '')];
  if (!routeDef) {
    sendJson(res, 404, { error: 'not_found' });
  } else if (req.method !== routeDef.method) {
    res.setHeader('allow', routeDef.method);
    sendJson(res, 405, { error: 'method_not_allowed', allow: routeDef.method });
  } else {
    sendJson(res, 200, routeDef.run(req));
  }
}

// ---------------------------------------------------------------------------
// Shared Signals transmitter (SSF 1.0, CAEP 1.0, RISC 1.0) and its demo control
// ---------------------------------------------------------------------------
//
// Enough of a transmitter for the site's receiver and its ssf_stream/ssf_poll commands:
// /.well-known/ssf-configuration, a stream API (create/get/update/replace/delete, status,
// verification) for clients authenticated by their client-credentials token, push delivery
// (RFC 8935) of SETs signed with the provider's current key, and poll delivery (RFC 8936).
// Streams live in memory. The demo control /__dev/users/<name>/<action> sends the event.

const SSF_PUSH = 'urn:ietf:rfc:8935';
const SSF_POLL = 'urn:ietf:rfc:8936';
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const SSF_EVENTS = 'https://schemas.openid.net/secevent/ssf/event-type/';
const EVENTS_SUPPORTED = [
  `${CAEP}session-revoked`,
  `${CAEP}credential-change`,
  `${RISC}account-disabled`,
  `${RISC}account-enabled`,
  `${RISC}account-purged`,
  `${RISC}sessions-revoked`,
  `${RISC}identifier-changed`,
  `${SSF_EVENTS}verification`,
];
const POLL_QUEUE_MAX = 1000;

const streams = new Map(); // stream_id -> stream configuration (+ queue for poll delivery)

function ssfConfiguration() {
  const base = CONFIG.issuer;
  return {
    spec_version: '1_0',
    issuer: base,
    jwks_uri: `${base}/jwks`,
    delivery_methods_supported: [SSF_PUSH, SSF_POLL],
    configuration_endpoint: `${base}/ssf/streams`,
    status_endpoint: `${base}/ssf/status`,
    verification_endpoint: `${base}/ssf/verify`,
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    default_subjects: 'ALL',
  };
}

function signSet(payload) {
  const jwk = currentKeys.jwks.keys[0];
  const { kid, alg: _alg, use: _use, ...material } = jwk;
  const key = crypto.createPrivateKey({ key: material, format: 'jwk' });
  const header = { alg: 'RS256', kid, typ: 'secevent+jwt' };
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode(header)}.${encode(payload)}`;
  const signature = crypto.sign('sha256', Buffer.from(input), key).toString('base64url');
  return `${input}.${signature}`;
}

function newSet(stream, eventType, subject, body = {}) {
  return {
    iss: CONFIG.issuer,
    aud: stream.aud,
    iat: Math.floor(Date.now() / 1000),
    jti: crypto.randomBytes(16).toString('hex'),
    txn: crypto.randomBytes(8).toString('hex'),
    ...(subject ? { sub_id: subject } : {}),
    events: { [eventType]: body },
  };
}

async function pushSet(stream, token) {
  stats.ssf.pushed += 1;
  try {
    const response = await globalThis.fetch(stream.delivery.endpoint_url, {
      method: 'POST',
      headers: {
        'content-type': 'application/secevent+jwt',
        accept: 'application/json',
        ...(stream.delivery.authorization_header
          ? { authorization: stream.delivery.authorization_header } : {}),
      },
      body: token,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status === 202) stats.ssf.accepted += 1;
    else stats.ssf.refused += 1;
    log(`SSF push to ${stream.delivery.endpoint_url}: ${response.status} ${response.status === 202 ? '' : text.slice(0, 200)}`);
    return response.status;
  } catch (err) {
    stats.ssf.failed += 1;
    log(`SSF push to ${stream.delivery.endpoint_url} failed: ${err?.message || err}`);
    return 0;
  }
}

// Deliver one event to one stream (push now, or queue for polling); the push status.
async function deliver(stream, eventType, subject, body) {
  if (eventType !== `${SSF_EVENTS}verification` && !stream.events_delivered.includes(eventType)) {
    return null;
  }
  if (stream.status !== 'enabled' && eventType !== `${SSF_EVENTS}verification`) return null;
  const token = signSet(newSet(stream, eventType, subject, body));
  if (stream.delivery.method === SSF_POLL) {
    const jti = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).jti;
    stream.queue.set(jti, token);
    while (stream.queue.size > POLL_QUEUE_MAX) stream.queue.delete(stream.queue.keys().next().value);
    return 'queued';
  }
  return pushSet(stream, token);
}

async function broadcast(eventType, subject, body = {}) {
  const results = [];
  for (const stream of streams.values()) {
    results.push({ stream_id: stream.stream_id, result: await deliver(stream, eventType, subject, body) });
  }
  return results;
}

async function readJson(req) {
  const form = await readBody(req);
  if (!form) return {};
  const value = JSON.parse(form);
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
  return value;
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// The client of a client-credentials token sent as Bearer, or undefined.
async function ssfClient(req) {
  const match = /^Bearer (.+)$/.exec(req.headers.authorization || '');
  if (!match) return undefined;
  const token = await provider.ClientCredentials.find(match[1]);
  if (!token || token.isExpired) return undefined;
  return token.clientId;
}

function publicStream(stream) {
  const { queue: _queue, owner: _owner, ...shown } = stream;
  if (shown.delivery?.authorization_header) {
    shown.delivery = { ...shown.delivery, authorization_header: '(set)' };
  }
  return shown;
}

function ownStream(clientId, streamId) {
  const stream = streams.get(streamId || '');
  return stream && stream.owner === clientId ? stream : undefined;
}

function streamFrom(clientId, body, previous = {}) {
  const streamId = previous.stream_id || crypto.randomBytes(12).toString('hex');
  const delivery = body.delivery || previous.delivery || { method: SSF_POLL };
  const method = delivery.method === SSF_PUSH ? SSF_PUSH : SSF_POLL;
  const requested = Array.isArray(body.events_requested)
    ? body.events_requested : (previous.events_requested || []);
  return {
    stream_id: streamId,
    iss: CONFIG.issuer,
    aud: clientId,
    owner: clientId,
    delivery: method === SSF_PUSH
      ? { method, endpoint_url: String(delivery.endpoint_url || ''), authorization_header: delivery.authorization_header }
      : { method, endpoint_url: `${CONFIG.issuer}/ssf/poll/${streamId}` },
    events_supported: EVENTS_SUPPORTED,
    events_requested: requested,
    events_delivered: requested.filter((event) => EVENTS_SUPPORTED.includes(event)),
    description: String(body.description ?? previous.description ?? ''),
    status: previous.status || 'enabled',
    queue: previous.queue || new Map(),
  };
}

async function handleStreams(req, res, clientId, url) {
  const streamId = url.searchParams.get('stream_id');
  if (req.method === 'GET') {
    if (!streamId) {
      sendJson(res, 200, [...streams.values()].filter((s) => s.owner === clientId).map(publicStream));
      return;
    }
    const stream = ownStream(clientId, streamId);
    if (!stream) sendJson(res, 404, { error: 'not_found' });
    else sendJson(res, 200, publicStream(stream));
    return;
  }
  if (req.method === 'DELETE') {
    if (!ownStream(clientId, streamId)) sendJson(res, 404, { error: 'not_found' });
    else {
      streams.delete(streamId);
      log(`SSF stream ${streamId} deleted`);
      res.writeHead(204).end();
    }
    return;
  }
  const body = await readJson(req);
  if (req.method === 'POST') {
    if ([...streams.values()].some((s) => s.owner === clientId)) {
      sendJson(res, 409, { error: 'stream_exists', error_description: 'this client already has a stream' });
      return;
    }
    const stream = streamFrom(clientId, body);
    if (stream.delivery.method === SSF_PUSH && !/^https?:\/\//.test(stream.delivery.endpoint_url)) {
      sendJson(res, 400, { error: 'invalid_request', error_description: 'delivery.endpoint_url is required for push' });
      return;
    }
    streams.set(stream.stream_id, stream);
    log(`SSF stream ${stream.stream_id} created for ${clientId} (${stream.delivery.method})`);
    sendJson(res, 201, publicStream(stream));
    return;
  }
  if (req.method === 'PATCH' || req.method === 'PUT') {
    const previous = ownStream(clientId, body.stream_id);
    if (!previous) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    const base = req.method === 'PUT' ? { stream_id: previous.stream_id, status: previous.status, queue: previous.queue } : previous;
    const stream = streamFrom(clientId, body, base);
    streams.set(stream.stream_id, stream);
    sendJson(res, 200, publicStream(stream));
    return;
  }
  sendJson(res, 405, { error: 'method_not_allowed' });
}

async function handleSsf(req, res, pathname) {
  if (pathname === '/.well-known/ssf-configuration') {
    sendJson(res, 200, ssfConfiguration());
    return;
  }
  const url = new URL(req.url, CONFIG.issuer);
  try {
    const clientId = await ssfClient(req);
    if (!clientId) {
      sendJson(res, 401, { error: 'invalid_token', error_description: 'send a client-credentials access token' });
      return;
    }
    if (pathname === '/ssf/streams') {
      await handleStreams(req, res, clientId, url);
    } else if (pathname === '/ssf/status') {
      const body = req.method === 'POST' ? await readJson(req) : {};
      const stream = ownStream(clientId, body.stream_id || url.searchParams.get('stream_id'));
      if (!stream) sendJson(res, 404, { error: 'not_found' });
      else {
        if (req.method === 'POST' && ['enabled', 'paused', 'disabled'].includes(body.status)) {
          stream.status = body.status;
        }
        sendJson(res, 200, { stream_id: stream.stream_id, status: stream.status });
      }
    } else if (pathname === '/ssf/verify' && req.method === 'POST') {
      const body = await readJson(req);
      const stream = ownStream(clientId, body.stream_id);
      if (!stream) sendJson(res, 404, { error: 'not_found' });
      else {
        const event = body.state ? { state: String(body.state) } : {};
        const subject = { format: 'opaque', id: stream.stream_id };
        await deliver(stream, `${SSF_EVENTS}verification`, subject, event);
        res.writeHead(204).end();
      }
    } else if (pathname.startsWith('/ssf/poll/') && req.method === 'POST') {
      await handlePoll(req, res, clientId, pathname.slice('/ssf/poll/'.length));
    } else {
      sendJson(res, 404, { error: 'not_found' });
    }
  } catch (err) {
    sendJson(res, 400, { error: 'invalid_request', error_description: String(err?.message || err) });
  }
}

// RFC 8936: acknowledge (ack, setErrs), then return up to maxEvents queued SETs.
async function handlePoll(req, res, clientId, streamId) {
  const stream = ownStream(clientId, streamId);
  if (!stream || stream.delivery.method !== SSF_POLL) {
    sendJson(res, 404, { error: 'not_found' });
    return;
  }
  const body = await readJson(req);
  for (const jti of Array.isArray(body.ack) ? body.ack : []) stream.queue.delete(jti);
  for (const [jti, error] of Object.entries(body.setErrs || {})) {
    log(`SSF poll: receiver refused ${jti}: ${error?.err} ${error?.description || ''}`);
    stream.queue.delete(jti);
  }
  const max = Number.isInteger(body.maxEvents) && body.maxEvents >= 0 ? body.maxEvents : 100;
  const sets = Object.fromEntries([...stream.queue.entries()].slice(0, max));
  stats.ssf.polled += Object.keys(sets).length;
  sendJson(res, 200, { sets, moreAvailable: stream.queue.size > Object.keys(sets).length });
}

// Demo control: POST /__dev/users/<name>/<action>, JSON back (a form post comes back to /__dev/).
const DEV_USER_PATH = /^\/__dev\/users\/([^/]+)\/(disable|enable|revoke-sessions|credential-change|purge)\/?$/;
const USER_ACTIONS = {
  disable: `${RISC}account-disabled`,
  enable: `${RISC}account-enabled`,
  purge: `${RISC}account-purged`,
  'revoke-sessions': `${CAEP}session-revoked`,
  'credential-change': `${CAEP}credential-change`,
};

async function handleUserControl(req, res, username, action) {
  const user = loadUsers().find((candidate) => candidate.username === username);
  if (!user) {
    sendJson(res, 404, { error: 'unknown_user', error_description: `no user ${username}` });
    return;
  }
  const now = Math.floor(Date.now() / 1000);
  const body = action === 'credential-change'
    ? { credential_type: 'password', change_type: 'update', event_timestamp: now }
    : { event_timestamp: now };
  const subject = { format: 'iss_sub', iss: CONFIG.issuer, sub: user.sub };
  const results = await broadcast(USER_ACTIONS[action], subject, body);
  log(`demo control: ${action} ${username} -> ${results.length} stream(s)`);
  if ((req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded')) {
    res.writeHead(303, { location: `/__dev/?done=${encodeURIComponent(`${action} ${username}`)}` }).end();
    return;
  }
  sendJson(res, 200, { user: username, event: USER_ACTIONS[action], streams: results });
}

function devPage() {
  const rows = loadUsers().map((user) => {
    const name = escapeHtml(user.username);
    const buttons = Object.keys(USER_ACTIONS).map((action) => `
      <form method="post" action="/__dev/users/${encodeURIComponent(user.username)}/${action}" style="display:inline">
        <button type="submit" id="${action}-${name}">${escapeHtml(action)}</button>
      </form>`).join('');
    return `<tr><td>${name}</td><td>${buttons}</td></tr>`;
  }).join('');
  const streamRows = [...streams.values()].map((s) => `<li>${escapeHtml(s.stream_id)}: ${escapeHtml(s.delivery.method)} ${escapeHtml(s.delivery.endpoint_url)} (${escapeHtml(s.status)})</li>`).join('') || '<li>none yet: run manage.py ssf_stream --provider default create</li>';
  return page('Shared Signals', `
<h1>Shared Signals (dev)</h1>
<p>Send a security event about a user to every stream.</p>
<table>${rows}</table>
<h2>Streams</h2><ul>${streamRows}</ul>
<p>Pushed: ${stats.ssf.pushed}, accepted: ${stats.ssf.accepted}, refused: ${stats.ssf.refused}, failed: ${stats.ssf.failed}</p>`,
  '<style>body{max-width:60rem} button{margin:.2rem;font-size:.8rem}</style>');
}

// ---------------------------------------------------------------------------
// HTTP server
// ---------------------------------------------------------------------------

const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]+)\/?$/;
const ABORT_PATH = /^\/interaction\/([A-Za-z0-9_-]+)\/abort\/?$/;

async function route(req, res) {
  const { pathname } = new URL(req.url, 'http://devidp.invalid');
  countPath(pathname);

  if (pathname === '/__dev' || pathname === '/__dev/') {
    sendHtml(res, 200, devPage());
    return;
  }
  const userControl = DEV_USER_PATH.exec(pathname);
  if (userControl && req.method === 'POST') {
    await handleUserControl(req, res, decodeURIComponent(userControl[1]), userControl[2]);
    return;
  }
  if (pathname.startsWith('/__dev/')) {
    handleDev(req, res, pathname);
    return;
  }
  if (pathname === '/.well-known/ssf-configuration' || pathname.startsWith('/ssf/')) {
    await handleSsf(req, res, pathname);
    return;
  }

  if (pathname === '/account' && req.method === 'GET') {
    sendHtml(res, 200, accountPage());
    return;
  }

  const interaction = INTERACTION_PATH.exec(pathname);
  const abort = req.method === 'POST' ? ABORT_PATH.exec(pathname) : null;
  if (abort || (interaction && (req.method === 'GET' || req.method === 'POST'))) {
    try {
      if (abort) await abortInteraction(req, res, abort[1]);
      else await handleInteraction(req, res, interaction[1]);
    } catch (err) {
      // Typically SessionNotFound: cookie expired or the flow was restarted.
      log(`interaction error: ${err?.message || err}${err?.error_description ? ` (${err.error_description})` : ''}`);
      if (!res.headersSent) {
        const status = err?.statusCode || 400;
        sendHtml(res, status, page('Error', `<h1>Sign-in failed</h1><p>${escapeHtml(err?.error_description || err?.message || 'error')}</p><p>Start the sign-in again from the site.</p>`));
      }
    }
    return;
  }

  await providerHandler(req, res);
}

function startServer() {
  const server = http.createServer((req, res) => {
    const started = Date.now();
    const { pathname } = new URL(req.url, 'http://devidp.invalid');
    // Path only: query strings carry codes, states and tokens.
    res.on('finish', () => {
      console.log(`${req.method} ${pathname} ${res.statusCode} ${Date.now() - started}ms`);
    });
    route(req, res).catch((err) => {
      log(`unhandled error on ${req.method} ${pathname}: ${err?.stack || err}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.end();
    });
  });

  server.listen(CONFIG.port, CONFIG.host, () => {
    console.log(`devidp listening on ${CONFIG.issuer}`);
  });

  const shutdown = (signal) => {
    log(`${signal} received, shutting down`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    // Safety net if some connection refuses to go away.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  return server;
}

installProvider(loadOrCreateKeys());
startServer();
