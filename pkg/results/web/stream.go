package web

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"sync"
)

// A piece is bytes sent as they are to every viewer, made once: an HTTP/1.1
// chunk ("size\r\n" data "\r\n"), whose data alone is what goes out when the
// response is not chunked. sum is the checksum of the text the data stands
// for, for a gzip stream's trailer.
type piece struct {
	chunk []byte
	at    int // where the data starts in chunk
	sum   textSum
}

func newPiece(data []byte, text []byte) piece { return pieceOf(data, sumOf(text)) }

// pieceOf is data as a piece, sum the checksum of the text it stands for.
func pieceOf(data []byte, sum textSum) piece {
	if len(data) == 0 {
		return piece{}
	}
	c := append(strconv.AppendInt(make([]byte, 0, len(data)+12), int64(len(data)), 16), '\r', '\n')
	at := len(c)
	c = append(append(c, data...), '\r', '\n')
	return piece{chunk: c, at: at, sum: sum}
}

func (p piece) data() []byte {
	if p.chunk == nil {
		return nil
	}
	return p.chunk[p.at : len(p.chunk)-2]
}

// wire is what goes on the connection.
func (p piece) wire(chunked bool) []byte {
	if chunked {
		return p.chunk
	}
	return p.data()
}

// A streamEncoder gives the pieces of one event stream.
type streamEncoder interface {
	start() piece // what comes before the first frame: the retry delay
	event(*edition) piece
	keepAlive(*edition) piece // a comment, and the age of the results if they have one
	end() piece               // what ends the stream cleanly (the last chunk aside)
}

const (
	retryText     = "retry: 2000\n\n"
	keepAliveText = ": keep-alive\n\n"
)

// plainPieces are the constant pieces of every uncompressed stream.
type plainPieces struct{ retry piece }

func newPlainPieces() *plainPieces {
	return &plainPieces{retry: newPiece([]byte(retryText), nil)}
}

type plainStream struct{ pieces *plainPieces }

func (s plainStream) start() piece              { return s.pieces.retry }
func (plainStream) event(ed *edition) piece     { return ed.event }
func (plainStream) keepAlive(ed *edition) piece { return ed.keepAlive }
func (plainStream) end() piece                  { return piece{} }

// gzipStream is one viewer's gzip stream made of pieces compressed once
// for every viewer: a deflate stream may be any sequence of blocks, so
// each event, compressed on its own without reference to what came
// before and flushed to a byte boundary, follows the previous one as is.
// Only the trailer, the CRC-32 and length of what this viewer got, is its
// own, and it is combined from the pieces' checksums, not computed again.
type gzipStream struct {
	pieces *gzipPieces
	crc    uint32
	size   uint32
}

// gzipPieces are the constant pieces of every gzip stream, made once.
type gzipPieces struct{ start piece }

func newGzipPieces() *gzipPieces {
	return &gzipPieces{start: newPiece(append(bytes.Clone(gzipHeader), deflateAlone([]byte(retryText))...), []byte(retryText))}
}

// add counts p's text as sent, for the trailer.
func (g *gzipStream) add(p piece) piece {
	g.crc = p.sum.after(g.crc)
	g.size += p.sum.size
	return p
}

func (g *gzipStream) start() piece                { return g.add(g.pieces.start) }
func (g *gzipStream) event(ed *edition) piece     { return g.add(ed.gzEvent) }
func (g *gzipStream) keepAlive(ed *edition) piece { return g.add(ed.gzKeepAlive) }

// end is a final empty stored block and the trailer.
func (g *gzipStream) end() piece {
	b := bytes.Clone(finalBlock)
	b = binary.LittleEndian.AppendUint32(b, g.crc)
	return newPiece(binary.LittleEndian.AppendUint32(b, g.size), nil)
}

// deflateAlone compresses b as deflate blocks that refer to nothing
// before them, ending on a byte boundary (a sync flush), not final.
func deflateAlone(b []byte) []byte {
	var out bytes.Buffer
	zw := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(zw)
	zw.Reset(&out)
	zw.Write(b)
	zw.Flush()
	return out.Bytes()
}

// deflaters keeps compressors for reuse: each is some 800 KB to make, and
// a change compresses two texts.
var deflaters = sync.Pool{New: func() any {
	zw, _ := flate.NewWriter(nil, flate.BestCompression)
	return zw
}}

// textSum is the CRC-32 (IEEE) of a text, its length, and what appending
// it does to the CRC of any text before it: multiplying by x^(8*size)
// modulo the polynomial, as zlib's crc32_combine does. So a viewer's CRC
// costs a few dozen operations per piece, not a pass over 16 KB.
type textSum struct {
	crc, shift, size uint32
}

// crcPoly is the IEEE polynomial, reflected.
const crcPoly = 0xedb88320

func sumOf(text []byte) textSum {
	// x^(8n): square x^8 for each bit of n. In this reflected form x^k is
	// the bit 31-k, so 1 is 1<<31.
	shift, sq := uint32(1)<<31, uint32(1)<<23
	for n := len(text); n > 0; n >>= 1 {
		if n&1 != 0 {
			shift = mulModP(sq, shift)
		}
		sq = mulModP(sq, sq)
	}
	return textSum{crc: crc32.ChecksumIEEE(text), shift: shift, size: uint32(len(text))}
}

// after is the CRC of a text whose CRC is crc followed by this one's text.
func (s textSum) after(crc uint32) uint32 { return mulModP(s.shift, crc) ^ s.crc }

// then is the sum of s's text followed by n's.
func (s textSum) then(n textSum) textSum {
	return textSum{crc: n.after(s.crc), shift: mulModP(s.shift, n.shift), size: s.size + n.size}
}

// mulModP multiplies two polynomials modulo crcPoly, reflected.
func mulModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}
