// What every page shares: the header (user, language switch, sign out), the sign-in guard,
// banners and a screen-reader announcer.

import { apply, lang, onLangChange, setLang, t } from './i18n.js';
import { ApiError, canCreate, getToken, me, signInUrl, signOut } from './api.js';

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Sign-in guard, header and language. Resolves with the user (null when auth is false). */
export async function initPage({ auth = true, nav = null } = {}) {
  apply();
  let user = null;
  if (auth) {
    if (!getToken()) {
      location.replace(signInUrl());
      return new Promise(() => {});
    }
    try {
      user = await me();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        signOut();
        location.replace(signInUrl());
        return new Promise(() => {});
      }
      throw err;
    }
  }
  renderHeader(user, nav);
  onLangChange(() => renderHeader(user, nav));
  return user;
}

function renderHeader(user, nav) {
  let header = document.querySelector('header.site');
  if (!header) {
    header = el('header', { class: 'site' });
    document.body.prepend(header);
    const skip = el('a', { class: 'skip', href: '#main' });
    document.body.prepend(skip);
  }
  document.querySelector('a.skip').textContent = t('skip');
  header.replaceChildren();
  header.append(el('a', { class: 'brand', href: user ? '/app/auctions' : '/app/' },
    t('brand'), el('span', { lang: 'en' }, 'Bidroom')));
  if (user) {
    const links = [['auctions', '/app/auctions', t('nav.auctions')]];
    if (canCreate(user)) links.push(['create', '/app/auctions/new', t('nav.create')]);
    if (['purchaser', 'agency', 'supervisor', 'admin'].some((r) => user.roles.includes(r))) {
      links.push(['projects', '/app/projects', t('nav.projects')]);
    }
    if (['purchaser', 'supervisor', 'admin'].some((r) => user.roles.includes(r))) {
      links.push(['budgets', '/app/budgets', t('nav.budgets')]);
    }
    if (user.roles.includes('supplier')) links.push(['bids', '/app/bids', t('nav.bids')]);
    if (user.roles.includes('admin')) links.push(['calendar', '/app/calendar', t('nav.calendar')]);
    header.append(el('nav', { 'aria-label': t('nav.label') },
      links.map(([key, href, label]) => el('a', {
        href, 'aria-current': key === nav ? 'page' : null,
      }, label))));
  }
  const tools = el('div', { class: 'tools' });
  if (user) {
    const roles = user.roles.map((r) => t(`role.${r}`)).join('、');
    tools.append(el('span', { class: 'whoami', id: 'whoami' },
      `${user.user_name} · ${roles} · ${user.org_name}`));
  }
  const other = lang() === 'zh' ? 'en' : 'zh';
  tools.append(el('button', {
    type: 'button', id: 'lang-toggle', lang: other === 'en' ? 'en' : 'zh-CN',
    'aria-label': other === 'en' ? 'Switch to English' : '切换到中文',
    onclick: () => setLang(other),
  }, other === 'en' ? 'English' : '中文'));
  if (user) {
    tools.append(el('button', {
      type: 'button', id: 'sign-out',
      onclick: () => { signOut(); location.assign('/app/'); },
    }, t('signout')));
  }
  header.append(tools);
}

/** Show (or replace) a banner; kind: info | ok | warn | bad. `alert` makes it role=alert. */
export function setBanner(id, kind, text, { alert = false } = {}) {
  const box = document.getElementById('banners');
  if (!box) return;
  let node = box.querySelector(`[data-banner="${id}"]`);
  if (!node) {
    node = el('div', { 'data-banner': id, role: alert ? 'alert' : 'status' });
    box.append(node);
  }
  node.className = `banner banner-${kind}`;
  if (node.textContent !== text) node.textContent = text;
}

export function clearBanner(id) {
  const node = document.querySelector(`#banners [data-banner="${id}"]`);
  if (node) node.remove();
}

/** Announce a sentence to screen readers (a polite live region). */
export function announce(text) {
  const node = document.getElementById('announcer');
  if (node) node.textContent = text;
}

/** The auction id from /app/auctions/{id}/… */
export function auctionIdFromPath() {
  const m = /^\/app\/auctions\/([^/]+)\//.exec(location.pathname);
  return m ? decodeURIComponent(m[1]) : null;
}

/** The auction's title in the current language. */
export function titleOf(auction) {
  if (!auction) return '';
  return lang() === 'en' && auction.title_en ? auction.title_en : auction.title;
}

export function orgName(ref) {
  if (!ref) return '—';
  return lang() === 'en' && ref.name_en ? ref.name_en : ref.name;
}

export function showFatal(err) {
  const main = document.getElementById('main');
  const message = err instanceof ApiError ? `${t(`err.${err.code}`, {}, err.message)}` : String(err);
  main.replaceChildren(el('div', { class: 'card' },
    el('h1', {}, t('error.title')),
    el('p', { role: 'alert' }, message),
    el('p', {}, el('a', { href: '/app/auctions' }, t('back.list')))));
}
