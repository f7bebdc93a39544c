// The station screen: renders the daemon's snapshots (GET /events, server-sent events). No framework, nothing from
// the internet. Every text from the station is set with textContent, never as HTML: a drive's name or a refusal's
// reason can hold anything a hostile drive carried.
'use strict';

const drivesEl = document.getElementById('drives');
const noDrives = document.getElementById('no-drives');
const jobsBody = document.querySelector('#jobs tbody');
const noJobs = document.getElementById('no-jobs');
const offline = document.getElementById('offline');
const cards = new Map();

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function size(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
}

function duration(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const two = (n) => String(n).padStart(2, '0');
  return h > 0 ? h + ':' + two(m) + ':' + two(s) : m + ':' + two(s);
}

function bar(kind, done, total, text) {
  const b = el('div', 'bar ' + kind);
  b.setAttribute('role', 'progressbar');
  b.setAttribute('aria-label', kind);
  b.setAttribute('aria-valuemin', '0');
  b.setAttribute('aria-valuemax', String(total));
  b.setAttribute('aria-valuenow', String(done));
  const fill = el('div', 'fill');
  fill.style.width = (total > 0 ? Math.min(100, (100 * done) / total) : 0).toFixed(1) + '%';
  b.append(fill, el('span', 'bar-text', text));
  return b;
}

function card(d) {
  const c = el('article', 'card tone-' + d.tone);
  c.dataset.stage = d.stage;
  c.dataset.drive = d.id;
  if (d.jobId) c.dataset.job = d.jobId;
  c.append(el('div', 'state', d.title));
  const ids = el('div', 'ids');
  ids.append(el('span', 'job', d.jobId ? 'Job ' + d.jobId : 'Job —'), el('span', 'device', d.device));
  c.append(ids);
  if (d.detail) c.append(el('div', 'detail', d.detail));
  const p = d.progress;
  if (p) {
    c.append(bar('bytes', p.bytes, p.totalBytes, size(p.bytes) + ' of ' + size(p.totalBytes)));
    if (p.totalFiles !== undefined) {
      c.append(bar('files', p.files, p.totalFiles, p.files.toLocaleString('en') + ' of ' + p.totalFiles.toLocaleString('en') + ' files'));
    }
    if (p.bytesPerSecond !== undefined) {
      const numbers = el('div', 'numbers');
      numbers.append(el('span', 'rate', size(p.bytesPerSecond) + '/s'), el('span', 'eta', 'ETA ' + (p.etaSeconds === undefined ? '--:--' : duration(p.etaSeconds))));
      c.append(numbers);
    }
  }
  if (d.lastFile !== undefined) c.append(el('div', 'file', 'Last file: ' + d.lastFile));
  return c;
}

function renderDrives(drives) {
  const seen = new Set();
  for (const d of drives) {
    seen.add(d.id);
    const next = card(d);
    const old = cards.get(d.id);
    if (old) old.replaceWith(next);
    else drivesEl.append(next);
    cards.set(d.id, next);
  }
  for (const [id, c] of cards) {
    if (!seen.has(id)) {
      c.remove();
      cards.delete(id);
    }
  }
  noDrives.hidden = drives.length > 0;
}

const JOB_TONES = {
  Completed: 'good', CompletedWithErrors: 'warn', InProgress: 'busy', Pending: 'wait',
  Canceled: 'idle', Expired: 'idle', MissingSignature: 'bad', InvalidSignature: 'bad', DeviceError: 'bad',
};

function renderJobs(jobs) {
  const rows = jobs.map((j) => {
    const tr = el('tr');
    tr.dataset.job = j.jobId;
    const status = el('td', 'status tone-' + (JOB_TONES[j.jobStatus] || 'idle'), j.jobStatus);
    if (j.reason) status.title = j.reason;
    tr.append(
      el('td', 'job', j.jobId),
      status,
      el('td', 'device', j.deviceStatus),
      el('td', 'errors', j.errorCount === undefined ? '' : String(j.errorCount)),
      el('td', 'log', j.log || ''),
      el('td', 'updated', new Date(j.updatedAt).toLocaleString('en-GB')),
    );
    return tr;
  });
  jobsBody.replaceChildren(...rows);
  noJobs.hidden = jobs.length > 0;
}

function render(s) {
  document.getElementById('station').textContent = s.station ? '· ' + s.station : '';
  renderDrives(s.drives);
  renderJobs(s.jobs);
}

function tickClock() {
  document.getElementById('clock').textContent = new Date().toLocaleTimeString('en-GB');
}
tickClock();
setInterval(tickClock, 1000);

const events = new EventSource('/events');
events.onmessage = (m) => {
  offline.hidden = true;
  render(JSON.parse(m.data));
};
events.onerror = () => {
  offline.hidden = false;
};
events.onopen = () => {
  offline.hidden = true;
};
