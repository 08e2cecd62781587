// The tutorial's server (../shared/seed, part 2), as written, for the side-by-side benchmark
// (issue 5). Changes from the tutorial, and only these:
//   - a sync.RWMutex over the pools: the tutorial's map is read by every sender's goroutine and
//     written by every join and leave, which crashes Go ("concurrent map read and map write");
//   - a per-connection sync.Mutex around WriteMessage: gorilla allows one concurrent writer per
//     connection, and two senders may write to the same receiver at once. The design keeps its
//     shape: the sender's goroutine writes the message to every other member itself, one
//     WriteMessage (one frame, one write system call) per receiver, while holding the pools'
//     read lock;
//   - rooms, as part 3 announces them: /ws is the global pool, /ws/<room> the pool named <room>;
//   - makeUUID's error is handled (the tutorial calls it as if it returned one value);
//   - an -addr flag.
package main

import (
	"flag"
	"log"
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(r *http.Request) bool { return true },
}

// The tutorial's pool holds *websocket.Conn; here each also carries its write lock.
type member struct {
	conn *websocket.Conn
	mu   sync.Mutex
}

type pool map[string]*member

// Part 3: "a rooms map such that clients can choose which pool they connect to". The room ""
// is the tutorial's globalPool.
var (
	poolsMu sync.RWMutex
	pools   = map[string]pool{}
)

func poolReader(conn *websocket.Conn, room string) {
	// subscribe to pool
	uuid, err := makeUUID()
	if err != nil {
		log.Println(err)
		conn.Close()
		return
	}
	me := &member{conn: conn}
	poolsMu.Lock()
	p := pools[room]
	if p == nil {
		p = make(pool, 0)
		pools[room] = p
	}
	p[uuid] = me
	poolsMu.Unlock()

	// remove from pool
	defer func() {
		poolsMu.Lock()
		delete(p, uuid)
		if len(p) == 0 {
			delete(pools, room)
		}
		poolsMu.Unlock()
		conn.Close()
	}()

	// write to pool
	// read from pool
	for {
		messageType, msg, err := conn.ReadMessage()
		if err != nil {
			log.Println(err)
			break // connection closed
		}
		poolsMu.RLock()
		for k, c := range p {
			if k == uuid {
				continue
			}
			c.mu.Lock()
			err := c.conn.WriteMessage(messageType, msg)
			c.mu.Unlock()
			if err != nil {
				log.Println(err)
			}
		}
		poolsMu.RUnlock()
	}
}

func wsHandler(w http.ResponseWriter, r *http.Request) {
	room := ""
	if r.URL.Path != "/ws" {
		room = strings.TrimPrefix(r.URL.Path, "/ws/")
		if room == "" || strings.Contains(room, "/") {
			http.NotFound(w, r)
			return
		}
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Println(err)
		return
	}
	poolReader(ws, room)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	http.HandleFunc("/ws", wsHandler)
	http.HandleFunc("/ws/", wsHandler)
	log.Printf("tutorial-go listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
