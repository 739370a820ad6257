package core

import "context"

// Stream is a typed way into a scheduler's inbox: every value sent arrives
// in Handle as a UserMessage whose Payload is a StreamMessage[T] naming the
// stream. A framework may have any number of them (one per REST endpoint,
// per upstream queue, ...); they share the inbox and its bound.
type Stream[T any] struct {
	name string
	in   inbox
}

// inbox is what a Stream needs of a Scheduler, whatever its state type.
type inbox interface {
	Send(ctx context.Context, payload any) error
	TrySend(payload any) error
	Ask(ctx context.Context, payload any) (any, error)
}

// StreamMessage is the payload of a message sent through a Stream.
type StreamMessage[T any] struct {
	Stream string
	Value  T
}

// NewStream returns a typed stream named name into s.
func NewStream[T any, S any](s *Scheduler[S], name string) *Stream[T] {
	return &Stream[T]{name: name, in: s}
}

// Name returns the stream's name.
func (st *Stream[T]) Name() string { return st.name }

// Send queues v, waiting while the inbox is full (back-pressure).
func (st *Stream[T]) Send(ctx context.Context, v T) error {
	return st.in.Send(ctx, StreamMessage[T]{Stream: st.name, Value: v})
}

// TrySend queues v or fails at once with ErrQueueFull.
func (st *Stream[T]) TrySend(v T) error {
	return st.in.TrySend(StreamMessage[T]{Stream: st.name, Value: v})
}

// Ask sends v as a request and returns the framework's Reply.
func (st *Stream[T]) Ask(ctx context.Context, v T) (any, error) {
	return st.in.Ask(ctx, StreamMessage[T]{Stream: st.name, Value: v})
}
