// gorilla/websocket's chat-hub design (its examples/chat), with rooms, for the side-by-side
// benchmark (issue 5). Written here against the library from Debian; the design as gorilla's
// example has it:
//   - one hub goroutine per room owns that room's clients and runs the register, unregister
//     and broadcast channels; a full send buffer (256 messages) closes that client;
//   - per client, a read pump (reads messages and hands them to the hub) and a write pump (the
//     only writer of the connection, draining a buffered send channel; pings every 54 s).
// Departures from the example, for wsfwd's semantics: the sender is excluded from the
// broadcast; each message keeps its type (text or binary) and goes out as its own frame (the
// example joins queued messages with newlines into one text frame); the read limit is 16 MiB
// (the example's is 512 bytes). Rooms: /ws is the global room, /ws/<room> the room named
// <room>; a room's hub is made on first use and kept for the life of the process.
package main

import (
	"flag"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 16 << 20
	sendBuffer     = 256
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(r *http.Request) bool { return true },
}

type message struct {
	sender *Client
	kind   int
	data   []byte
}

type Client struct {
	hub  *Hub
	conn *websocket.Conn
	send chan message
}

type Hub struct {
	clients    map[*Client]bool
	broadcast  chan message
	register   chan *Client
	unregister chan *Client
}

func newHub() *Hub {
	return &Hub{
		clients:    make(map[*Client]bool),
		broadcast:  make(chan message),
		register:   make(chan *Client),
		unregister: make(chan *Client),
	}
}

func (h *Hub) run() {
	for {
		select {
		case client := <-h.register:
			h.clients[client] = true
		case client := <-h.unregister:
			if _, ok := h.clients[client]; ok {
				delete(h.clients, client)
				close(client.send)
			}
		case m := <-h.broadcast:
			for client := range h.clients {
				if client == m.sender {
					continue
				}
				select {
				case client.send <- m:
				default:
					close(client.send)
					delete(h.clients, client)
				}
			}
		}
	}
}

var (
	hubsMu sync.Mutex
	hubs   = map[string]*Hub{}
)

func hubFor(room string) *Hub {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h := hubs[room]
	if h == nil {
		h = newHub()
		hubs[room] = h
		go h.run()
	}
	return h
}

func (c *Client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(pongWait)); return nil })
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseGoingAway, websocket.CloseAbnormalClosure, websocket.CloseNormalClosure) {
				log.Printf("error: %v", err)
			}
			break
		}
		c.conn.SetReadDeadline(time.Now().Add(pongWait))
		c.hub.broadcast <- message{sender: c, kind: kind, data: data}
	}
}

func (c *Client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case m, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				// The hub closed the channel.
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WriteMessage(m.kind, m.data); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func serveWs(w http.ResponseWriter, r *http.Request) {
	room := ""
	if r.URL.Path != "/ws" {
		room = strings.TrimPrefix(r.URL.Path, "/ws/")
		if room == "" || strings.Contains(room, "/") {
			http.NotFound(w, r)
			return
		}
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Println(err)
		return
	}
	hub := hubFor(room)
	client := &Client{hub: hub, conn: conn, send: make(chan message, sendBuffer)}
	client.hub.register <- client
	go client.writePump()
	go client.readPump()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	http.HandleFunc("/ws", serveWs)
	http.HandleFunc("/ws/", serveWs)
	log.Printf("hub-go listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
