package mcp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// readSSE reads a server-sent event stream and calls fn with the data of
// each event that has any (multi-line data joined with "\n", as the
// HTML spec says). Event names, ids, retry hints and comments are
// ignored: MCP puts its messages in data. An event larger than max bytes
// is an error, as is what fn returns.
func readSSE(r io.Reader, max int, fn func(data []byte) error) error {
	br := bufio.NewReaderSize(r, 32<<10)
	var data bytes.Buffer
	has := false
	flush := func() error {
		if !has {
			return nil
		}
		b := bytes.Clone(data.Bytes())
		data.Reset()
		has = false
		return fn(b)
	}
	for {
		line, err := readLine(br, max)
		if err != nil {
			if errors.Is(err, io.EOF) {
				// A stream may end without a blank line after its last event.
				return flush()
			}
			return err
		}
		if len(line) == 0 {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			value = nil // a field name alone: empty value
		}
		if len(field) == 0 {
			continue // a comment
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		if string(field) != "data" {
			continue
		}
		if has {
			data.WriteByte('\n')
		}
		if data.Len()+len(value) > max {
			return fmt.Errorf("an event longer than %d bytes", max)
		}
		data.Write(value)
		has = true
	}
}

// readLine reads one line ending in \n or \r\n (or the end of the
// stream), without its end, of at most max bytes. A bare \r, which SSE also
// allows as a line end, stays in the line: the servers MCP meets do not
// send it, and JSON data cannot hold one unescaped.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max+2 {
			return nil, fmt.Errorf("a line longer than %d bytes", max)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			break
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}
