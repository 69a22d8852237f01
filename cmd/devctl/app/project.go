package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/git"
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

// resolved is what a command knows about the project it runs in.
type resolved struct {
	Dir    string         // absolute project directory
	Config *config.Config // nil when only defaults were detected
	Notes  []string       // choices made without devctl.yaml
	Git    git.Info
	Env    string
}

// resolve finds the project directory, its devctl.yaml (or detected
// defaults when needDefaults), the git facts and the environment name.
func (p *projectOptions) resolve(ctx context.Context, needConfig bool) (*resolved, error) {
	return p.resolveEnv(ctx, needConfig, true)
}

// resolveEnv is resolve; without needEnv a directory outside git is fine.
func (p *projectOptions) resolveEnv(ctx context.Context, needConfig, needEnv bool) (*resolved, error) {
	dir := p.dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r := &resolved{Dir: dir}
	if needConfig {
		path := p.file
		if path == "" {
			path, err = config.Find(dir)
		}
		switch {
		case err == nil:
			cfg, err := config.Load(path)
			if err != nil {
				return nil, err
			}
			r.Config, r.Dir = cfg, cfg.Dir
		case errors.Is(err, config.ErrNotFound) && p.file == "":
			cfg, notes, derr := config.Detect(dir)
			if derr != nil {
				return nil, fmt.Errorf("no %s in %s and nothing to detect: %w", config.FileName, dir, derr)
			}
			r.Config, r.Notes = cfg, notes
		default:
			return nil, err
		}
	}
	if p.name != "" {
		if err := envs.ValidateName(p.name); err != nil {
			return nil, err
		}
		r.Env = p.name
	}
	info, gerr := git.Describe(ctx, r.Dir)
	if gerr != nil && r.Env == "" {
		if needEnv {
			return nil, gerr
		}
		return r, nil
	}
	r.Git = info
	if p.branch != "" {
		r.Git.Branch = p.branch
	}
	if r.Env == "" {
		r.Env = envs.Name(r.Git.Repo, r.Git.Branch)
	}
	return r, nil
}
