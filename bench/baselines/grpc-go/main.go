// Command grpc-go is the benchmark's grpc-go baseline: the minimal chat
// behaviour of bench/baselines/raw-http2-server.ts (Connect, CreateGroupChat,
// JoinGroupChat, LeaveGroupChat and SendMessage of chat.v1.ChatService),
// written the way a Go team would write it on grpc-go: one goroutine per
// Connect stream, woken when something is queued for its user, that sends
// everything queued so far as one ConnectResponse, as the project's server
// coalesces. It does nothing else: no validation, no authentication (the
// caller is the plain "authorization" value), no queue bound, no presence,
// no history. GOMAXPROCS is left to the environment; the bench sets 1.
// Two differences from the raw baseline that no scenario sees: unary replies
// are grpc-go's usual headers, empty message and trailers (not trailers-only),
// and a Connect stream that ends after a later one of the same name replaced
// it leaves the later one registered.
//
// The codec and the protobuf encoding are hand-written because Debian ships
// grpc-go 1.33 with golang/protobuf 1.3 and no protoc-gen-go for the APIv2
// (google.golang.org/protobuf), so nothing generated would build here. That
// only makes grpc-go cheaper than it would be with generated messages: each
// event is encoded once and its bytes shared by every recipient, and nothing
// is decoded into structs, which makes it a tougher baseline, not a weaker one.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec passes messages through as their encoded bytes (*[]byte both
// ways). Registered as "proto" it replaces grpc-go's own protobuf codec:
// grpc-go looks the codec up by the request's content-subtype on every call,
// and "application/grpc+proto" (or plain "application/grpc") means "proto".
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	// No copy: grpc-go queues these bytes for its writer goroutine, and no
	// caller here touches a message's bytes after sending them.
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	// A copy, because the codec contract does not let us keep data.
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// init runs after the init of every imported package, grpc-go's
// encoding/proto included, so this registration is the one that stays.
func init() { encoding.RegisterCodec(rawCodec{}) }

// appendField appends a length-delimited field (a string, bytes or an
// embedded message: wire type 2).
func appendField[T string | []byte](b []byte, field uint64, value T) []byte {
	b = binary.AppendUvarint(b, field<<3|2)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

var errMalformed = status.Error(codes.InvalidArgument, "malformed protobuf message")

// stringField returns the last value of a length-delimited field (the last
// one wins, as protobuf has it), skipping fields of other wire types.
func stringField(msg []byte, want uint64) (string, error) {
	var value []byte
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return "", errMalformed
		}
		msg = msg[n:]
		var size uint64
		switch tag & 7 {
		case 0:
			if _, n = binary.Uvarint(msg); n <= 0 {
				return "", errMalformed
			}
			size = uint64(n)
		case 1:
			size = 8
		case 5:
			size = 4
		case 2:
			if size, n = binary.Uvarint(msg); n <= 0 {
				return "", errMalformed
			}
			msg = msg[n:]
			if size <= uint64(len(msg)) && tag>>3 == want {
				value = msg[:size]
			}
		default:
			return "", errMalformed
		}
		if size > uint64(len(msg)) {
			return "", errMalformed
		}
		msg = msg[size:]
	}
	return string(value), nil
}

// user is one online user: what is queued for its Connect stream, and the
// channel that wakes the stream's goroutine. notify is buffered 1 so that
// senders never block and a burst of sends wakes the goroutine once.
type user struct {
	mu      sync.Mutex
	pending []byte // encoded `events` entries of one ConnectResponse
	notify  chan struct{}
}

func (u *user) enqueue(entry []byte) {
	u.mu.Lock()
	u.pending = append(u.pending, entry...)
	u.mu.Unlock()
	select {
	case u.notify <- struct{}{}:
	default: // already woken: it will take this entry too
	}
}

func (u *user) take() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	batch := u.pending
	// A fresh buffer each time, since grpc-go may still hold batch's bytes
	// after SendMsg returns.
	u.pending = nil
	return batch
}

type hub struct {
	// mu guards users and groups; SendMessage only reads them, so that
	// concurrent sends do not serialize on it.
	mu     sync.RWMutex
	users  map[string]*user
	groups map[string]map[string]struct{}

	idPrefix string
	idSeq    atomic.Uint64
}

func newHub() *hub {
	random := make([]byte, 8)
	if _, err := rand.Read(random); err != nil {
		log.Fatal(err)
	}
	return &hub{users: map[string]*user{}, groups: map[string]map[string]struct{}{}, idPrefix: hex.EncodeToString(random)}
}

// nextID is a random per-process prefix and a counter: unique like the other
// baselines' UUIDs (32 characters against their 36), without asking the
// kernel for randomness on every message.
func (h *hub) nextID() string {
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], h.idSeq.Add(1))
	return h.idPrefix + hex.EncodeToString(seq[:])
}

func (h *hub) connect(req []byte, stream grpc.ServerStream) error {
	username, err := stringField(req, 1)
	if err != nil {
		return err
	}
	me := &user{notify: make(chan struct{}, 1)}
	h.mu.Lock()
	h.users[username] = me
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		// A later stream of the same name has replaced this one: leave its
		// registration and groups alone.
		if h.users[username] == me {
			delete(h.users, username)
			for _, members := range h.groups {
				delete(members, username)
			}
		}
		h.mu.Unlock()
	}()

	connected := appendField(nil, 1, appendField(nil, 1, appendField(nil, 1, username)))
	if err := stream.SendMsg(&connected); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-me.notify:
		}
		// SendMsg blocks while the client's flow-control window is shut, and
		// whatever arrives meanwhile goes out together in the next response.
		if batch := me.take(); len(batch) > 0 {
			if err := stream.SendMsg(&batch); err != nil {
				return err
			}
		}
	}
}

func (h *hub) createGroupChat(caller string, req []byte) error {
	name, err := stringField(req, 1)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.groups[name] = map[string]struct{}{caller: {}}
	h.mu.Unlock()
	return nil
}

func (h *hub) joinGroupChat(caller string, req []byte) error {
	name, err := stringField(req, 1)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if members, ok := h.groups[name]; ok {
		members[caller] = struct{}{}
	}
	h.mu.Unlock()
	return nil
}

func (h *hub) leaveGroupChat(caller string, req []byte) error {
	name, err := stringField(req, 1)
	if err != nil {
		return err
	}
	h.mu.Lock()
	delete(h.groups[name], caller)
	h.mu.Unlock()
	return nil
}

const (
	channelTypeUser  = 1
	channelTypeGroup = 2
)

func (h *hub) sendMessage(caller string, req []byte) error {
	channel, err := stringField(req, 1)
	if err != nil {
		return err
	}
	text, err := stringField(req, 2)
	if err != nil {
		return err
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	members, isGroup := h.groups[channel]
	channelType := byte(channelTypeUser)
	if isGroup {
		channelType = channelTypeGroup
	}
	ref := append(appendField(nil, 1, channel), 2<<3, channelType)
	msg := appendField(nil, 1, h.nextID())
	msg = appendField(msg, 2, caller)
	msg = appendField(msg, 3, ref)
	msg = appendField(msg, 4, text)
	// One `events` entry of a ConnectResponse, encoded once for every
	// recipient: concatenated entries make a ConnectResponse.
	entry := appendField(nil, 1, appendField(nil, 2, msg))
	if !isGroup {
		if u, ok := h.users[channel]; ok {
			u.enqueue(entry)
		}
		return nil
	}
	for name := range members {
		if u, ok := h.users[name]; ok {
			u.enqueue(entry)
		}
	}
	return nil
}

// callerOf returns the plain username the other baselines take from the
// authorization header.
func callerOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if values := md.Get("authorization"); len(values) > 0 {
		return values[0]
	}
	return ""
}

var emptyMessage = []byte{}

// unary adapts a hub method to grpc-go's method handler, as generated code
// would, interceptor included, though this server installs none.
func unary(name string, method func(*hub, string, []byte) error) grpc.MethodDesc {
	fullMethod := "/chat.v1.ChatService/" + name
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error, interceptor grpc.UnaryServerInterceptor) (interface{}, error) {
			var req []byte
			if err := dec(&req); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req interface{}) (interface{}, error) {
				if err := method(srv.(*hub), callerOf(ctx), *req.(*[]byte)); err != nil {
					return nil, err
				}
				return &emptyMessage, nil
			}
			if interceptor == nil {
				return call(ctx, &req)
			}
			return interceptor(ctx, &req, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, call)
		},
	}
}

var chatServiceDesc = grpc.ServiceDesc{
	ServiceName: "chat.v1.ChatService",
	// Any handler will do: the methods below cast it to *hub themselves.
	HandlerType: (*interface{})(nil),
	Methods: []grpc.MethodDesc{
		unary("CreateGroupChat", (*hub).createGroupChat),
		unary("JoinGroupChat", (*hub).joinGroupChat),
		unary("LeaveGroupChat", (*hub).leaveGroupChat),
		unary("SendMessage", (*hub).sendMessage),
	},
	Streams: []grpc.StreamDesc{{
		StreamName: "Connect",
		Handler: func(srv interface{}, stream grpc.ServerStream) error {
			var req []byte
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			return srv.(*hub).connect(req, stream)
		},
		ServerStreams: true,
	}},
	Metadata: "chat/v1/chat.proto",
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "0"
	}
	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		log.Fatal(err)
	}
	// grpc-go's defaults but for one: 64 KiB initial windows grown by BDP
	// estimation, 32 KiB read and write buffers, a goroutine per stream (no
	// stream workers), no keepalive pings. Left alone, grpc-go advertises no
	// stream limit at all; a production server states one, and 10000 is one
	// the bench never reaches (the raw baseline states 1000).
	srv := grpc.NewServer(grpc.MaxConcurrentStreams(10000))
	srv.RegisterService(&chatServiceDesc, newHub())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		srv.Stop()
	}()

	fmt.Printf("{\"msg\":\"server listening\",\"port\":%d}\n", lis.Addr().(*net.TCPAddr).Port)
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		log.Fatal(err)
	}
}
