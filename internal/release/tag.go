package release

import "fmt"

// TagState is what became of a release's tag after the release began.
type TagState string

const (
	// TagMoved: the tag now names another commit (Release.TagCommit).
	TagMoved TagState = "moved"
	// TagDeleted: the tag was deleted.
	TagDeleted TagState = "deleted"
)

// TagMovePolicy says what a release does when its tag moves.
type TagMovePolicy string

const (
	// TagMoveRefuse keeps the release on its commit and says so (default).
	TagMoveRefuse TagMovePolicy = "refuse"
	// TagMoveRestart withdraws the lanes not past their point of no return
	// and plans the tag again at the new commit, as a new release.
	TagMoveRestart TagMovePolicy = "restart"
)

// ParseTagMovePolicy validates a policy name; "" is TagMoveRefuse.
func ParseTagMovePolicy(s string) (TagMovePolicy, error) {
	switch p := TagMovePolicy(s); p {
	case "":
		return TagMoveRefuse, nil
	case TagMoveRefuse, TagMoveRestart:
		return p, nil
	}
	return "", fmt.Errorf("on_tag_move %q is not one of refuse, restart", s)
}

// TagStatus says in a sentence what became of a release's tag, or "" when
// the tag still names the release's commit.
func TagStatus(r Release) string {
	switch {
	case r.SupersededBy != "" && r.TagState == TagMoved:
		return fmt.Sprintf("tag %s moved to %s; release %s restarted it there, and this release's lanes past their point of no return stay on %s",
			r.Tag, ShortSHA(r.TagCommit), r.SupersededBy, ShortSHA(r.Commit))
	case r.SupersededBy != "":
		return fmt.Sprintf("superseded by release %s", r.SupersededBy)
	case r.TagState == TagMoved && r.TagCommit == r.Commit:
		return fmt.Sprintf("tag %s was deleted and created again at %s; lanes cancelled by the deletion stay cancelled (on_tag_move: refuse)", r.Tag, ShortSHA(r.Commit))
	case r.TagState == TagMoved:
		return fmt.Sprintf("tag %s moved to %s; this release stays on %s (on_tag_move: refuse) — tag a new version to ship %s",
			r.Tag, ShortSHA(r.TagCommit), ShortSHA(r.Commit), ShortSHA(r.TagCommit))
	case r.TagState == TagDeleted:
		return fmt.Sprintf("tag %s was deleted; lanes that had not passed their point of no return were cancelled", r.Tag)
	}
	return ""
}

// ShortSHA abbreviates a commit SHA for people (12 hex digits).
func ShortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
