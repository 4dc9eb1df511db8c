package appstoretest_test

import (
	"encoding/json"
	"strings"
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

// A build that declares non-exempt encryption is reviewed by neither Beta
// App Review nor App Review until an app encryption declaration is linked
// to it; linking one of the app's declarations is a 204.
func TestNonExemptEncryptionNeedsADeclaration(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{})
	yes := true
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.1", BuildNumber: "7", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: &yes})
	versionID := b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.1", appstore.VersionPrepareForSubmission)
	betaSub := `{"data":{"type":"betaAppReviewSubmissions","relationships":{"build":{"data":{"type":"builds","id":"` + buildID + `"}}}}}`

	r := b.do(t, "POST", "/v1/betaAppReviewSubmissions", "application/json", betaSub)
	require.Equal(t, "409 ENTITY_ERROR.RELATIONSHIP.REQUIRED", r.errorCode(t))
	require.Contains(t, string(r.body), "appEncryptionDeclaration")

	require.Equal(t, 204, b.do(t, "PATCH", "/v1/appStoreVersions/"+versionID+"/relationships/build", "application/json", `{"data":{"type":"builds","id":"`+buildID+`"}}`).status)
	r = b.do(t, "POST", "/v1/reviewSubmissions", "application/json", `{"data":{"type":"reviewSubmissions","attributes":{"platform":"IOS"},"relationships":{"app":{"data":{"type":"apps","id":"`+b.appID+`"}}}}}`)
	require.Equal(t, 201, r.status, string(r.body))
	var sub struct{ Data struct{ ID string } }
	require.NoError(t, json.Unmarshal(r.body, &sub))
	item := `{"data":{"type":"reviewSubmissionItems","relationships":{"reviewSubmission":{"data":{"type":"reviewSubmissions","id":"` + sub.Data.ID + `"}},"appStoreVersion":{"data":{"type":"appStoreVersions","id":"` + versionID + `"}}}}}`
	r = b.do(t, "POST", "/v1/reviewSubmissionItems", "application/json", item)
	require.Equal(t, "409 STATE_ERROR", r.errorCode(t))
	require.Contains(t, string(r.body), `"associatedErrors":{"/v1/builds/`+buildID+`":[{`)
	require.Contains(t, string(r.body), "'appEncryptionDeclaration'")

	other := b.fake.AddEncryptionDeclaration("1234567891", "") // another app's
	r = b.do(t, "PATCH", "/v1/builds/"+buildID+"/relationships/appEncryptionDeclaration", "application/json", `{"data":{"type":"appEncryptionDeclarations","id":"`+other+`"}}`)
	require.Equal(t, "409 ENTITY_ERROR.RELATIONSHIP.INVALID", r.errorCode(t))
	decl := b.fake.AddEncryptionDeclaration(b.appID, "")
	r = b.do(t, "PATCH", "/v1/builds/"+buildID+"/relationships/appEncryptionDeclaration", "application/json", `{"data":{"type":"appEncryptionDeclarations","id":"`+decl+`"}}`)
	require.Equal(t, 204, r.status, string(r.body))
	r = b.do(t, "GET", "/v1/builds/"+buildID+"?include=appEncryptionDeclaration", "", "")
	require.Contains(t, string(r.body), `"appEncryptionDeclaration":{"data":{"id":"`+decl+`","type":"appEncryptionDeclarations"}`)

	require.Equal(t, 201, b.do(t, "POST", "/v1/betaAppReviewSubmissions", "application/json", betaSub).status)
	require.Equal(t, 201, b.do(t, "POST", "/v1/reviewSubmissionItems", "application/json", item).status)
}

// Beta App Review needs the app's review information (contact, and the
// demo account when one is required) and test information (a localization
// with feedback email and description). Apple refuses the submission
// naming each missing attribute.
func TestBetaReviewNeedsTheAppsTestInformation(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{})
	no := false
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.1", BuildNumber: "7", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: &no})
	sub := `{"data":{"type":"betaAppReviewSubmissions","relationships":{"build":{"data":{"type":"builds","id":"` + buildID + `"}}}}}`
	b.fake.SetBetaAppInfo(b.appID, appstoretest.BetaAppReviewDetail{ContactFirstName: "Ada", ContactLastName: "Lovelace", ContactPhone: "+1 555 0100",
		DemoAccountRequired: true, DemoAccountName: "reviewer"}, appstoretest.BetaAppLocalization{Locale: "en-US", Description: "Beta"})

	r := b.do(t, "POST", "/v1/betaAppReviewSubmissions", "application/json", sub)
	require.Equal(t, "409 STATE_ERROR", r.errorCode(t))
	var doc struct {
		Errors []struct {
			Meta struct {
				AssociatedErrors map[string][]struct{ Code, Detail string } `json:"associatedErrors"`
			} `json:"meta"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(r.body, &doc))
	got := map[string][]string{}
	for path, errs := range doc.Errors[0].Meta.AssociatedErrors {
		for _, e := range errs {
			require.Equal(t, "ENTITY_ERROR.ATTRIBUTE.REQUIRED", e.Code)
			got[path] = append(got[path], e.Detail)
		}
	}
	require.Equal(t, map[string][]string{
		"/v1/betaAppReviewDetails/" + b.appID: {
			"You must provide a value for the attribute 'contactEmail' with this request",
			"You must provide a value for the attribute 'demoAccountPassword' with this request"},
		"/v1/betaAppLocalizations/" + b.appID + "-en-US": {"You must provide a value for the attribute 'feedbackEmail' with this request"},
	}, got)

	r = b.do(t, "GET", "/v1/apps/"+b.appID+"/betaAppReviewDetail", "", "")
	require.Equal(t, 200, r.status)
	require.Contains(t, string(r.body), `"demoAccountRequired":true`)

	b.fake.CompleteBetaAppInfo(b.appID)
	require.Equal(t, 201, b.do(t, "POST", "/v1/betaAppReviewSubmissions", "application/json", sub).status)
}

// An update cannot go to App Review while a localization of its version
// lacks What's New: Apple answers 409 STATE_ERROR.ENTITY_STATE_INVALID,
// "This resource cannot be reviewed, please check associated errors to see
// why.", one ENTITY_ERROR.ATTRIBUTE.REQUIRED per localization. An app's
// first version needs none, and takes none.
func TestUpdateNeedsWhatsNewOnEveryLocale(t *testing.T) {
	t.Parallel()
	b := setup(t, appstoretest.Options{})
	b.fake.SetLocales(b.appID, "en-US", "de-DE")
	no := false
	first := b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.0", appstore.VersionPrepareForSubmission)
	r := b.do(t, "GET", "/v1/appStoreVersions/"+first+"/appStoreVersionLocalizations", "", "")
	require.Equal(t, 200, r.status)
	var locs struct {
		Data []struct {
			ID         string
			Attributes struct{ Locale string }
		}
	}
	require.NoError(t, json.Unmarshal(r.body, &locs))
	require.Len(t, locs.Data, 2)
	patch := func(id, text string) reply {
		return b.do(t, "PATCH", "/v1/appStoreVersionLocalizations/"+id, "application/json",
			`{"data":{"type":"appStoreVersionLocalizations","id":"`+id+`","attributes":{"whatsNew":"`+text+`"}}}`)
	}
	require.Equal(t, "409 ENTITY_ERROR.ATTRIBUTE.INVALID", patch(locs.Data[0].ID, "Hi").errorCode(t), "a first version takes no What's New")

	require.NoError(t, b.fake.SetVersionState(first, appstore.VersionReadyForDistribution))
	update := b.fake.AddAppStoreVersion(b.appID, appstore.PlatformIOS, "1.1", appstore.VersionPrepareForSubmission)
	buildID := b.fake.AddBuild(appstoretest.Build{AppID: b.appID, Version: "1.1", BuildNumber: "2", State: appstore.ProcessingStateValid, UsesNonExemptEncryption: &no})
	require.Equal(t, 204, b.do(t, "PATCH", "/v1/appStoreVersions/"+update+"/relationships/build", "application/json", `{"data":{"type":"builds","id":"`+buildID+`"}}`).status)
	r = b.do(t, "POST", "/v1/reviewSubmissions", "application/json", `{"data":{"type":"reviewSubmissions","relationships":{"app":{"data":{"type":"apps","id":"`+b.appID+`"}}}}}`)
	var sub struct{ Data struct{ ID string } }
	require.NoError(t, json.Unmarshal(r.body, &sub))
	item := `{"data":{"type":"reviewSubmissionItems","relationships":{"reviewSubmission":{"data":{"type":"reviewSubmissions","id":"` + sub.Data.ID + `"}},"appStoreVersion":{"data":{"type":"appStoreVersions","id":"` + update + `"}}}}}`

	r = b.do(t, "POST", "/v1/reviewSubmissionItems", "application/json", item)
	code, title, detail := errorBody(t, r)
	require.Equal(t, "STATE_ERROR.ENTITY_STATE_INVALID", code)
	require.Equal(t, "appStoreVersions with id '"+update+"' is not in valid state.", title)
	require.Equal(t, "This resource cannot be reviewed, please check associated errors to see why.", detail)
	require.Equal(t, 2, strings.Count(string(r.body), "You must provide a value for the attribute 'whatsNew' with this request"))

	r = b.do(t, "GET", "/v1/appStoreVersions/"+update+"/appStoreVersionLocalizations", "", "")
	require.NoError(t, json.Unmarshal(r.body, &locs))
	require.Equal(t, 200, patch(locs.Data[0].ID, "Fixes").status)
	require.Contains(t, string(b.do(t, "POST", "/v1/reviewSubmissionItems", "application/json", item).body), "/v1/appStoreVersionLocalizations/"+locs.Data[1].ID,
		"the locale still without it is named")
	require.Equal(t, 200, patch(locs.Data[1].ID, "Fixes").status)
	require.Equal(t, 201, b.do(t, "POST", "/v1/reviewSubmissionItems", "application/json", item).status)
}
