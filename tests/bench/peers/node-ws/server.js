'use strict';
// A Node `ws` 8 broadcast server for the side-by-side benchmark (issue 5): rooms by path (/ws
// the global room, /ws/<room> the room named <room>), each message sent to every other member
// of its room with its type (text or binary) kept; the sender is excluded. The usual `ws`
// broadcast loop: one ws.send per receiver, no compression (ws 8's default for servers).
//
//   node server.js --port PORT [--host 127.0.0.1]
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const port = Number(arg('--port', '8080'));
const host = arg('--host', '127.0.0.1');

const rooms = new Map(); // room name -> Set of sockets

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });

function roomOf(url) {
  const path = url.split('?')[0];
  if (path === '/ws') return '';
  const m = /^\/ws\/([^/]+)$/.exec(path);
  return m ? m[1] : null;
}

server.on('upgrade', (req, socket, head) => {
  const room = roomOf(req.url);
  if (room === null) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    let members = rooms.get(room);
    if (!members) {
      members = new Set();
      rooms.set(room, members);
    }
    members.add(ws);
    ws.on('message', (data, isBinary) => {
      for (const peer of members) {
        if (peer !== ws && peer.readyState === WebSocket.OPEN) {
          peer.send(data, { binary: isBinary });
        }
      }
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      members.delete(ws);
      if (members.size === 0 && rooms.get(room) === members) rooms.delete(room);
    });
  });
});

server.listen(port, host, () => {
  console.error(`node-ws (ws ${require('ws/package.json').version}) listening on ${host}:${port}`);
});
