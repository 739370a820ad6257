package core

import "encoding/json"

// Codec turns the framework's state into bytes for the store and back.
// Encode must be deterministic (equal states, equal bytes): regent writes
// the state only when its encoding changed.
type Codec[S any] interface {
	Encode(S) ([]byte, error)
	Decode([]byte) (S, error)
}

// JSONCodec encodes the state with encoding/json, the default.
type JSONCodec[S any] struct{}

// Encode implements Codec.
func (JSONCodec[S]) Encode(s S) ([]byte, error) { return json.Marshal(s) }

// Decode implements Codec.
func (JSONCodec[S]) Decode(b []byte) (S, error) {
	var s S
	err := json.Unmarshal(b, &s)
	return s, err
}
