package main

import (
	"io"

	"github.com/ferryworks/ferry/internal/output"
	"github.com/ferryworks/ferry/rolesetup"
)

// The setup-template formats of `ferry integration enable -o`.
const (
	formatCloudFormation output.Format = "cloudformation"
	formatTerraform      output.Format = "terraform"
)

func isTemplate(f output.Format) bool { return f == formatCloudFormation || f == formatTerraform }

// writeSetupTemplate writes role as a CloudFormation or Terraform template.
func writeSetupTemplate(w io.Writer, format output.Format, role rolesetup.Role) error {
	render := role.CloudFormation
	if format == formatTerraform {
		render = role.Terraform
	}
	b, err := render()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
