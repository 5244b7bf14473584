package fetcher

import (
	"errors"

	"github.com/ferryworks/ferry/fetcher/location"
)

// ParseURI parses an attachment URI with location.Parse (which documents the
// accepted forms). A URI ferry can never fetch is an *Error of KindInvalid at
// StageParse with code InvalidURI, location's message and the catalogue's
// hint, so it is reported like every other copy failure and never retried.
func ParseURI(s string) (location.Location, error) {
	loc, err := location.Parse(s)
	if err == nil {
		return loc, nil
	}
	var le *location.Error
	if !errors.As(err, &le) {
		return location.Location{}, err
	}
	return location.Location{}, &Error{Kind: KindInvalid, Stage: StageParse, Code: hInvalidURI.code(), Message: le.Message, URI: le.URI,
		Hint: hInvalidURI.render(hintVars{})}
}
