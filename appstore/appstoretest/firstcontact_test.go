package appstoretest_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/swapjoy/releasepilot/appstore"
	"github.com/swapjoy/releasepilot/appstore/appstoretest"
)

// errorBody decodes an ErrorResponse with one error.
func errorBody(t *testing.T, r reply) (code, title, detail string) {
	t.Helper()
	var doc struct {
		Errors []struct {
			Code, Title, Detail string
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(r.body, &doc), string(r.body))
	require.Len(t, doc.Errors, 1, string(r.body))
	return doc.Errors[0].Code, doc.Errors[0].Title, doc.Errors[0].Detail
}

// An internal group with access to all builds cannot have a build added:
// Apple answers 422 ENTITY_UNPROCESSABLE, "Cannot add internal group to a
// build." The group lists hasAccessToAllBuilds.
func TestInternalGroupWithAllBuilds(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{})
	no := false
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.0", BuildNumber: "1", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: &no})
	all := b.fake.AddGroup(appstoretest.BetaGroup{AppID: b.appID, Name: "Everyone", Internal: true, AllBuilds: true})
	some := b.fake.AddBetaGroup(b.appID, "Team", true)

	r := b.do(t, "GET", "/v1/betaGroups?filter[app]="+b.appID, "", "")
	require.Equal(t, 200, r.status)
	require.Contains(t, string(r.body), `"hasAccessToAllBuilds":true`)

	r = b.do(t, "POST", "/v1/builds/"+buildID+"/relationships/betaGroups", "application/json", `{"data":[{"type":"betaGroups","id":"`+all+`"}]}`)
	require.Equal(t, 422, r.status)
	code, title, detail := errorBody(t, r)
	require.Equal(t, "ENTITY_UNPROCESSABLE", code)
	require.Equal(t, "Builds cannot be assigned to this internal group.", title)
	require.Equal(t, "Cannot add internal group to a build.", detail)

	r = b.do(t, "POST", "/v1/builds/"+buildID+"/relationships/betaGroups", "application/json", `{"data":[{"type":"betaGroups","id":"`+some+`"}]}`)
	require.Equal(t, 204, r.status, "an internal group without automatic distribution takes the build")
}
