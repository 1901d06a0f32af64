// Lists that update in place: each child keeps its DOM node while its key stays in the list,
// and only text or attributes that changed are written. A button under a finger is never
// replaced by a copy of itself, so a press and its release land on the same node.

/**
 * Makes `parent`'s element children follow `items`: one child per key (`data-key`), in order.
 * New keys get `make(item)`; every kept or new child then gets `update(node, item)`. Children
 * whose key left the list are removed first, so kept children never move unless reordered.
 */
export function syncList(parent, items, keyOf, make, update) {
  const keys = items.map((it) => String(keyOf(it)));
  const wanted = new Set(keys);
  const old = new Map();
  for (const child of [...parent.children]) {
    const k = child.dataset.key;
    if (k === undefined || !wanted.has(k) || old.has(k)) child.remove();
    else old.set(k, child);
  }
  let cursor = parent.firstElementChild;
  items.forEach((item, i) => {
    let node = old.get(keys[i]);
    if (!node) {
      node = make(item);
      node.dataset.key = keys[i];
    }
    update(node, item);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else parent.insertBefore(node, cursor);
  });
}

/** Writes `text` only if it differs. */
export function setText(node, text) {
  const t = String(text);
  if (node.textContent !== t) node.textContent = t;
}

/** Sets (or with null/undefined removes) an attribute only if it differs. */
export function setAttr(node, name, value) {
  if (value === null || value === undefined) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}

export function setClass(node, className) {
  if (node.className !== className) node.className = className;
}

export function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}
