import { describe, expect, it } from 'vitest';
import { credentialsOf } from '../../shared/http/credentials';
import { eventOf } from '../../shared/listener/event-stream';

describe('an event of the stream (eventOf)', () => {
  it('carries its id, the topic as the event name and a UTF-8 payload as data', () => {
    expect(eventOf('s.1', 'demo/y', Buffer.from('hello'))).toBe('id: s.1\nevent: demo/y\ndata: hello\n\n');
  });

  it('splits a payload with line feeds into several data lines, which EventSource joins with LF', () => {
    expect(eventOf('s.2', 't', Buffer.from('a\nb\n'))).toBe('id: s.2\nevent: t\ndata: a\ndata: b\ndata: \n\n');
  });

  it('sends as base64, after the marker, a payload that is not UTF-8, holds a CR, or begins with the marker', () => {
    for (const payload of [Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('a\r\nb'), Buffer.from('base64:looks like one')]) {
      expect(eventOf('s.3', 't', payload)).toBe(`id: s.3\nevent: t\ndata: base64:${payload.toString('base64')}\n\n`);
    }
  });

  it('an empty payload is one empty data line (an event EventSource still dispatches)', () => {
    expect(eventOf('s.4', 't', Buffer.alloc(0))).toBe('id: s.4\nevent: t\ndata: \n\n');
  });

  it('percent-encodes a line break in the topic, since a field is one line', () => {
    expect(eventOf('s.5', 'a\nb\rc', Buffer.from('x'))).toBe('id: s.5\nevent: a%0Ab%0Dc\ndata: x\n\n');
  });
});

describe('HTTP credentials (credentialsOf)', () => {
  it('Basic: the user name and password (a colon in the password kept)', () => {
    expect(credentialsOf(`Basic ${Buffer.from('alice:pa:ss').toString('base64')}`)).toEqual({ username: 'alice', password: Buffer.from('pa:ss') });
  });

  it('Bearer: the token as the password, with no user name', () => {
    expect(credentialsOf('Bearer eyJ.a.b')).toEqual({ password: Buffer.from('eyJ.a.b') });
  });

  it('none: anonymous; another scheme or a Basic value without a colon: malformed', () => {
    expect(credentialsOf(undefined)).toEqual({});
    expect(credentialsOf('Digest x')).toBe('malformed');
    expect(credentialsOf(`Basic ${Buffer.from('alice').toString('base64')}`)).toBe('malformed');
    expect(credentialsOf('Bearer')).toBe('malformed');
  });
});
