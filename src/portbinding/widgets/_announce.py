"""Announcer: live regions a screen reader reads aloud, present before their text changes.

ipywidgets' HTML widget replaces its whole content on every change, and a live region that
arrives already holding its text is not announced reliably: the region must be in the page
*before* its text changes (WAI-ARIA). So the widgets do not rely on ``role="status"`` markup in
their HTML. This small widget (anywidget: a front end without a build step) renders two regions
once, visually hidden -- a polite one (``role="status"``) and an assertive one (``role="alert"``,
for errors and a solved challenge) -- and afterwards only changes their text.

It also keeps the keyboard with the widget it sits in (the nearest ``.pbl-keys``): see the ESM's
``keepKeys``.
"""

from __future__ import annotations

import anywidget
import traitlets

_ESM = """
function region(role, live) {
  const node = document.createElement("div");
  node.className = "pbl-sr-only pbl-live-" + role;
  node.setAttribute("role", role);
  node.setAttribute("aria-live", live);
  node.setAttribute("aria-atomic", "true");
  return node;
}

// JupyterLab reads keys at the document: in a notebook's command mode, an arrow key on a widget's
// drop-down list selects another cell, and typing "d d" to pick an item deletes one. Lumino skips
// its shortcuts for a key whose target (or an element between the target and the shortcut's
// selector) is marked data-lm-suppress-shortcuts -- and the selectors match the focused control
// itself, so the mark goes on each control of the widget (class pbl-keys) as it gets the focus.
//
// A button is disabled while its job runs, and a browser drops the focus of a control that gets
// disabled: a keyboard user would be thrown back to the top of the page after every click. So
// the control that had the focus gets it back when it is enabled again, unless the focus went
// somewhere else meanwhile.
function keepKeys(el, tries) {
  const scope = el.closest(".pbl-keys");
  if (!scope) {
    if (tries > 0) requestAnimationFrame(() => keepKeys(el, tries - 1));
    return;
  }
  if (scope.dataset.pblKeys) return;
  scope.dataset.pblKeys = "kept";
  let last = null;
  let lost = null;
  scope.addEventListener("focusin", (event) => {
    event.target.setAttribute("data-lm-suppress-shortcuts", "true");
    last = event.target;
    lost = null;
  });
  const nowhere = () => !document.activeElement || document.activeElement === document.body;
  new MutationObserver(() => {
    if (last && last.disabled) lost = last;
    if (lost && !lost.disabled && lost.isConnected && (nowhere() || document.activeElement === lost)) {
      lost.focus();
      lost = null;
    }
  }).observe(scope, { attributes: true, attributeFilter: ["disabled"], subtree: true });
}

export default {
  render({ model, el }) {
    el.classList.add("pbl-announcer");
    keepKeys(el, 600);
    const polite = region("status", "polite");
    const urgent = region("alert", "assertive");
    el.append(polite, urgent);
    let pending = null;
    const say = () => {
      const target = model.get("urgent") ? urgent : polite;
      const other = target === polite ? urgent : polite;
      other.textContent = "";
      // Emptied first, then filled a moment later: a repeated message is read again too.
      target.textContent = "";
      clearTimeout(pending);
      pending = setTimeout(() => { target.textContent = model.get("text"); }, 60);
    };
    model.on("change:serial", say);
    return () => { clearTimeout(pending); model.off("change:serial", say); };
  },
};
"""

HEARD_KEPT = 50  # announcements remembered for ``heard`` (tests, and anyone reviewing a session)

_CSS = """
.pbl-sr-only {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0;
}
.pbl-announcer { height: 0; margin: 0; }
"""


class Announcer(anywidget.AnyWidget):
    """Two visually hidden live regions; ``announce`` changes what they say."""

    _esm = _ESM
    _css = _CSS
    text = traitlets.Unicode("").tag(sync=True)
    urgent = traitlets.Bool(False).tag(sync=True)
    serial = traitlets.Int(0).tag(sync=True)  # a change of it is what the front end announces

    def __init__(self) -> None:
        super().__init__()
        self._heard: list[tuple[str, bool]] = []

    def announce(self, text: str, *, urgent: bool = False) -> None:
        """Have screen readers say ``text`` (``urgent``: interrupt, as for an error)."""
        self._heard = [*self._heard[-(HEARD_KEPT - 1) :], (text, urgent)]
        with self.hold_sync():
            self.text = text
            self.urgent = urgent
            self.serial += 1

    @property
    def said(self) -> str:
        """The last announcement ("" before the first)."""
        return str(self.text)

    @property
    def heard(self) -> list[tuple[str, bool]]:
        """The last announcements, oldest first, each with whether it was urgent."""
        return list(self._heard)
