package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
)

// projectOptions locate the project and its environment.
type projectOptions struct {
	dir    string
	file   string
	name   string
	branch string
}

func (p *projectOptions) addFlags(fs flagSet, withFile bool) {
	fs.StringVarP(&p.dir, "dir", "C", "", "the project directory (default: the current directory)")
	if withFile {
		fs.StringVarP(&p.file, "file", "f", "", "path of devctl.yaml (default: found in the project directory or its parents)")
	}
	fs.StringVar(&p.name, "name", "", "the environment name (default: derived from the repository and branch)")
	fs.StringVar(&p.branch, "branch", "", "the branch to name the environment after (default: the current git branch)")
}

type flagSet interface {
	StringVarP(p *string, name, shorthand, value, usage string)
	StringVar(p *string, name, value, usage string)
}

// ref is what the daemon needs to resolve the project: absolute paths and
// the overrides given on the command line. The daemon loads devctl.yaml,
// reads git and derives the environment name.
func (p *projectOptions) ref() (api.ProjectRef, error) {
	dir := p.dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return api.ProjectRef{}, err
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return api.ProjectRef{}, err
	}
	ref := api.ProjectRef{Dir: dir, Name: p.name, Branch: p.branch}
	if p.file != "" {
		if ref.Config, err = filepath.Abs(p.file); err != nil {
			return api.ProjectRef{}, err
		}
	}
	if p.name != "" {
		if err := envs.ValidateName(p.name); err != nil {
			return api.ProjectRef{}, err
		}
	}
	return ref, nil
}

// envArg is the environment named on the command line, else the one the
// daemon resolves for the current directory's branch.
func envArg(ctx context.Context, c *api.Client, p *projectOptions, args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	if p.name != "" {
		return p.name, nil
	}
	ref, err := p.ref()
	if err != nil {
		return "", err
	}
	ref.NameOnly = true
	res, err := c.Resolve(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("%w (or name the environment: `devctl ls` lists them)", err)
	}
	return res.Name, nil
}
