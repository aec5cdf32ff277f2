package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// ApiVersions: v0-4
//
// Lists every key in the handler table with its version range. A version
// above ours is answered in v0 with UNSUPPORTED_VERSION and the key list
// (KIP-511), so the client retries with a version we know; the
// connection stays open. The response header is always v0 (the
// connection skips header tags for key 18). v3+ validates the client
// software name and version as Kafka does (INVALID_REQUEST).
//
// No finalized features are advertised: transaction.version stays 0 until
// KIP-890 part 2 exists, so clients keep the classic transaction path.

func init() { register(18, 0, 4, handleApiVersions) }

func handleApiVersions(b *Broker, req *request) (any, error) {
	r := req.msg.(*kmsg.ApiVersionsRequest)
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.Version = r.Version
	if req.version > apis[18].max {
		resp.Version = 0
		resp.ErrorCode = tributary.ErrUnsupportedVersion.Code
		resp.ApiKeys = apiKeyList()
		return resp, nil
	}
	if r.Version >= 3 && (!validSoftwareNameVersion(r.ClientSoftwareName) || !validSoftwareNameVersion(r.ClientSoftwareVersion)) {
		resp.ErrorCode = tributary.ErrInvalidRequest.Code
		return resp, nil
	}
	resp.ApiKeys = apiKeyList()
	return resp, nil
}

// apiKeyList is the handler table as ApiVersions reports it, by key.
func apiKeyList() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for k, a := range apis {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, a.min, a.max
		keys = append(keys, ak)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}

// validSoftwareNameVersion is Kafka's [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
func validSoftwareNameVersion(s string) bool {
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if s == "" || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
