package server

import "encoding/json"

// jsonRaw embeds already-encoded JSON in a response.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return json.RawMessage(j).MarshalJSON() }
