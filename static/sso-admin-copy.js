// The provider form's "Copy" button: puts the redirect URI on the clipboard.
// A static file (no inline script): the site's Content-Security-Policy allows only these.
document.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-copy]');
  if (!button) return;
  const status = document.getElementById(button.getAttribute('aria-describedby') || '');
  const done = (text) => { if (status) status.textContent = text; };
  navigator.clipboard.writeText(button.dataset.copy)
    .then(() => done('Copied.'))
    .catch(() => done('Select the address and copy it by hand.'));
});
