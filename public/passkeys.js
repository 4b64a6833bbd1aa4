// Tessera: the browser side of the IdP's passkey forms, with @simplewebauthn/browser (/static/webauthn.js).
// A form marked data-passkey stays hidden unless this browser can use passkeys. On submit: ask the
// IdP for options (a fresh single-use challenge), let the browser's passkey manager answer, put the
// answer in the form and post it as an ordinary form, so the IdP answers with a redirect or a page.
'use strict'
;(function () {
  const lib = window.SimpleWebAuthnBrowser
  if (lib === undefined || !lib.browserSupportsWebAuthn()) return

  function say(form, text) {
    const status = form.querySelector('[data-passkey-status]')
    if (status !== null) status.textContent = text
  }

  async function run(form, button) {
    button.disabled = true
    say(form, '')
    try {
      const asked = await fetch(form.dataset.options, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ csrf: form.elements.csrf.value }),
      })
      const options = await asked.json()
      if (!asked.ok) throw new Error(options.message || 'The passkey could not be started.')
      const answer = form.dataset.passkey === 'register'
        ? await lib.startRegistration({ optionsJSON: options })
        : await lib.startAuthentication({ optionsJSON: options })
      form.elements.response.value = JSON.stringify(answer)
      form.submit()
    } catch (err) {
      // NotAllowedError: the user closed the prompt, or it timed out; nothing was sent.
      say(form, err && err.name === 'NotAllowedError' ? 'No passkey was used. You can try again.' : String((err && err.message) || err))
      button.disabled = false
    }
  }

  for (const form of document.querySelectorAll('form[data-passkey]')) {
    form.hidden = false
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      run(form, form.querySelector('button'))
    })
  }
})()
