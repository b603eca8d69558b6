/**
 * The web console: stock MQTT.js through the API Gateway door with the browser adapter.
 * Subscribe (wildcards welcome), publish with QoS and retain, a live log of messages, and a
 * tree of the topics that arrived with the retain flag and their latest value; the broker's
 * figures (the $SYS/broker/ ones) from the console server, every few seconds.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { createWebsocket } from '../adapter';

const MAX_LOG_ROWS = 500;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const ui = {
  url: $<HTMLInputElement>('url'),
  clientId: $<HTMLInputElement>('client-id'),
  version: $<HTMLSelectElement>('version'),
  connect: $<HTMLButtonElement>('connect'),
  status: $<HTMLSpanElement>('status'),
  subFilter: $<HTMLInputElement>('sub-filter'),
  subQos: $<HTMLSelectElement>('sub-qos'),
  subscribe: $<HTMLButtonElement>('subscribe'),
  subscriptions: $<HTMLUListElement>('subscriptions'),
  pubTopic: $<HTMLInputElement>('pub-topic'),
  pubPayload: $<HTMLTextAreaElement>('pub-payload'),
  pubQos: $<HTMLSelectElement>('pub-qos'),
  pubRetain: $<HTMLInputElement>('pub-retain'),
  publish: $<HTMLButtonElement>('publish'),
  log: $<HTMLUListElement>('log'),
  clearLog: $<HTMLButtonElement>('clear-log'),
  tree: $<HTMLUListElement>('tree'),
  brokerStats: $<HTMLTableElement>('broker-stats'),
};

const STATS_POLL_MS = 2_000;

let client: MqttClient | undefined;
const subscribed = new Map<string, number>();
const retained = new Map<string, string>();

function setStatus(state: 'connected' | 'connecting' | 'disconnected' | 'error', text: string = state): void {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  const connected = state === 'connected';
  ui.subscribe.disabled = !connected;
  ui.publish.disabled = !connected;
  ui.connect.textContent = state === 'disconnected' || state === 'error' ? 'Connect' : 'Disconnect';
}

function connect(): void {
  if (client) {
    client.end();
    return;
  }
  setStatus('connecting');
  const c = mqtt.connect(ui.url.value, {
    createWebsocket,
    clientId: ui.clientId.value,
    protocolVersion: Number(ui.version.value) as 4 | 5,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  client = c;
  c.on('connect', (connack) => {
    setStatus('connected');
    // [MQTT-3.2.2-14] a 5.0 server that says Retain Available = 0 must not be sent retained messages.
    const retainAvailable = connack.properties?.retainAvailable !== false;
    ui.pubRetain.disabled = !retainAvailable;
    if (!retainAvailable) ui.pubRetain.checked = false;
    ui.pubRetain.title = retainAvailable ? '' : 'this broker does not offer retained messages (Retain Available = 0)';
    // Subscriptions made earlier are made again on a new connection.
    for (const [filter, qos] of subscribed) c.subscribe(filter, { qos: qos as 0 | 1 | 2 });
  });
  c.on('message', (topic, payload, packet) => onMessage(topic, new TextDecoder().decode(payload), packet.qos, packet.retain));
  c.on('error', (error) => setStatus('error', `error: ${error.message}`));
  c.on('close', () => {
    if (client === c) client = undefined;
    if (ui.status.dataset.state !== 'error') setStatus('disconnected');
  });
}

function subscribe(): void {
  const filter = ui.subFilter.value.trim();
  const qos = Number(ui.subQos.value) as 0 | 1 | 2;
  if (!client || filter === '') return;
  // Retain As Published (5.0): the retain flag arrives as published, so the tree shows live retained values too.
  client.subscribe(filter, { qos, rap: true }, (error, granted) => {
    if (error) return setStatus('error', `subscribe failed: ${error.message}`);
    const grantedQos = granted?.[0]?.qos ?? qos;
    if (grantedQos >= 0x80) return setStatus('error', `subscription to ${filter} refused`);
    subscribed.set(filter, grantedQos);
    renderSubscriptions();
  });
}

function unsubscribe(filter: string): void {
  client?.unsubscribe(filter);
  subscribed.delete(filter);
  renderSubscriptions();
}

function publish(): void {
  const topic = ui.pubTopic.value.trim();
  if (!client || topic === '') return;
  const qos = Number(ui.pubQos.value) as 0 | 1 | 2;
  const retain = ui.pubRetain.checked;
  const payload = ui.pubPayload.value;
  client.publish(topic, payload, { qos, retain }, (error) => {
    if (error) return setStatus('error', `publish failed: ${error.message}`);
    logRow({ topic, payload, qos, retain, direction: 'out' });
  });
}

function onMessage(topic: string, payload: string, qos: number, retain: boolean): void {
  logRow({ topic, payload, qos, retain, direction: 'in' });
  if (!retain) return;
  // An empty retained message clears the topic's retained value.
  if (payload === '') retained.delete(topic);
  else retained.set(topic, payload);
  renderTree();
}

function logRow(message: { topic: string; payload: string; qos: number; retain: boolean; direction: 'in' | 'out' }): void {
  const row = document.createElement('li');
  row.className = `direction-${message.direction}`;
  row.dataset.topic = message.topic;
  row.dataset.direction = message.direction;
  row.append(
    cell('time', new Date().toLocaleTimeString()),
    cell('topic', message.topic),
    cell('qos', `QoS ${message.qos}`),
    cell('retain', message.retain ? 'R' : ''),
    cell('payload', message.payload),
  );
  ui.log.prepend(row);
  while (ui.log.children.length > MAX_LOG_ROWS) ui.log.lastElementChild?.remove();
}

function cell(className: string, text: string): HTMLSpanElement {
  const span = document.createElement('span');
  span.className = className;
  span.textContent = text;
  return span;
}

function renderSubscriptions(): void {
  ui.subscriptions.replaceChildren(
    ...[...subscribed].map(([filter, qos]) => {
      const item = document.createElement('li');
      item.dataset.filter = filter;
      const remove = document.createElement('button');
      remove.textContent = 'unsubscribe';
      remove.addEventListener('click', () => unsubscribe(filter));
      item.append(cell('filter', `${filter}  (QoS ${qos})`), remove);
      return item;
    }),
  );
}

interface TreeNode {
  readonly children: Map<string, TreeNode>;
  value?: string;
}

function renderTree(): void {
  if (retained.size === 0) {
    ui.tree.replaceChildren(Object.assign(document.createElement('li'), { className: 'muted', textContent: 'retained messages appear here' }));
    return;
  }
  const root: TreeNode = { children: new Map() };
  for (const [topic, value] of retained) {
    let node = root;
    for (const level of topic.split('/')) {
      let child = node.children.get(level);
      if (!child) node.children.set(level, (child = { children: new Map() }));
      node = child;
    }
    node.value = value;
  }
  ui.tree.replaceChildren(...renderLevel(root, ''));
}

function renderLevel(node: TreeNode, prefix: string): HTMLLIElement[] {
  return [...node.children.keys()].sort().map((level) => {
    const child = node.children.get(level)!;
    const topic = prefix === '' ? level : `${prefix}/${level}`;
    const item = document.createElement('li');
    item.dataset.topic = topic;
    item.append(cell('level', level === '' ? '(empty)' : level));
    if (child.value !== undefined) item.append(cell('value', child.value));
    if (child.children.size > 0) {
      const list = document.createElement('ul');
      list.append(...renderLevel(child, topic));
      item.append(list);
    }
    return item;
  });
}

async function start(): Promise<void> {
  const config = (await (await fetch('/config.json')).json()) as { apiGatewayUrl: string };
  ui.url.value = config.apiGatewayUrl;
  ui.clientId.value = `console-${Math.random().toString(16).slice(2, 10)}`;
  ui.connect.addEventListener('click', connect);
  ui.subscribe.addEventListener('click', subscribe);
  ui.publish.addEventListener('click', publish);
  ui.clearLog.addEventListener('click', () => ui.log.replaceChildren());
  setStatus('disconnected');
  setInterval(() => void showStats(), STATS_POLL_MS);
  void showStats();
}

/** The figures as the $SYS topics carry them, and what this process counted and has not flushed yet. */
interface BrokerFigures {
  readonly figures: ReadonlyArray<{ topic: string; payload: string }>;
  readonly pending: Readonly<Record<string, number>>;
}

async function showStats(): Promise<void> {
  const response = await fetch('/stats.json').catch(() => undefined);
  if (!response?.ok) return;
  const { figures, pending } = (await response.json()) as BrokerFigures;
  const row = (name: string, value: string, topic = '') => {
    const tr = document.createElement('tr');
    tr.title = topic;
    tr.dataset.topic = topic;
    for (const text of [name, value]) tr.append(Object.assign(document.createElement('td'), { textContent: text }));
    return tr;
  };
  const unflushed = Object.entries(pending).map(([name, n]) => `${name} ${n}`).join(', ');
  ui.brokerStats.replaceChildren(
    ...figures.map(({ topic, payload }) => row(topic.replace('$SYS/broker/', ''), payload, topic)),
    row('not yet flushed', unflushed === '' ? 'nothing' : unflushed),
  );
}

void start();
