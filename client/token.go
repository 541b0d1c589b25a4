package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Token refresh for a Play (PlayOptions.TokenSource).
//
// A server with auth on keeps a play connection only as long as the token
// that opened it: at the token's exp it closes with 4401. With a
// TokenSource, the Play asks for a token before every connect and resume,
// so it resumes with a fresh one after such a close. A refusal of a token
// that was just fetched, twice in a row without a welcome between them, is
// terminal: the source keeps handing out tokens the server refuses, and
// retrying would only loop.

// errEmptyToken is a TokenSource answering "" without an error.
var errEmptyToken = errors.New("gsd/client: the token source returned an empty token")

// refreshToken asks the TokenSource, if any, for the token of the next
// connection. Its error ends the Play.
func (p *Play) refreshToken() error {
	if p.opts.TokenSource == nil {
		return nil
	}
	tok, err := p.opts.TokenSource(p.ctx)
	if err == nil && tok == "" {
		err = errEmptyToken
	}
	if err != nil {
		if p.ctx.Err() != nil {
			return ErrPlayClosed
		}
		return fmt.Errorf("gsd/client: token source: %w", err)
	}
	p.mu.Lock()
	p.tok = tok
	p.mu.Unlock()
	return nil
}

// token returns the token for the next connection: the last one the
// TokenSource gave, else PlayOptions.Token.
func (p *Play) token() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tok != "" {
		return p.tok
	}
	return p.opts.Token
}

// welcomes counts the welcomes so far: the first one sets the session, each
// later one counts a resume.
func (p *Play) welcomes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.resumes
	if p.session != "" {
		n++
	}
	return n
}

// retryAuth reports whether the connection that ended with err, begun when
// welcomes() was mark, should be tried again with a fresh token: err is
// the server refusing the token (a 4401 close, or 401 at the upgrade), a
// TokenSource is set, and this is not the second refusal in a row. It
// must see the end of every connection (only run calls it).
func (p *Play) retryAuth(err error, mark int) bool {
	if p.welcomes() != mark {
		p.authFails = 0 // a token worked since: refusals start anew
	}
	if p.opts.TokenSource == nil || !authRefused(err) {
		return false
	}
	p.authFails++
	return p.authFails == 1
}

// authRefused reports whether err is the server refusing the token (not a
// transfer ticket, also refused with 4401: see ticketRefused).
func authRefused(err error) bool {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code == 4000+http.StatusUnauthorized && !strings.HasPrefix(ce.Reason, CodeTicketInvalid)
	}
	var he *Error
	return errors.As(err, &he) && he.Status == http.StatusUnauthorized
}
