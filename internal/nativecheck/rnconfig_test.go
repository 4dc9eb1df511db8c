package nativecheck

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// platformAnswer is what the reader says about one platform of a
// package's react-native.config.js, flattened for table tests.
func platformAnswer(c rnConfig, pl string) string {
	p := c.dependencyPlatform(pl)
	switch {
	case p.unsure != "":
		return "unsure: " + p.unsure
	case p.disabled:
		return "null"
	}
	var parts []string
	for _, k := range []string{"sourceDir", "podspecPath", "manifestPath"} {
		rel, set, why := c.pathSetting(p, k)
		switch {
		case why != "":
			return "unsure: " + why
		case set:
			parts = append(parts, k+"="+rel)
		}
	}
	if len(parts) == 0 {
		return "default"
	}
	return strings.Join(parts, " ")
}

func TestReadRNConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src    string
		ios, android string
	}{
		{
			name: "react-native-navigation 7.45.0",
			src: `module.exports = {
  dependency: {
    platforms: {
      ios: {},
      android: {
        sourceDir: './lib/android/app/',
        packageImportPath: 'import com.reactnativenavigation.react.NavigationPackage;',
        packageInstance: 'new NavigationPackage(reactNativeHost)',
      },
    },
  },
  project: { android: { sourceDir: './playground/android/' } },
};`,
			ios: "default", android: "sourceDir=lib/android/app",
		},
		{
			name: "appcenter-crashes 3.1.2 (path.join with __dirname)",
			src: `const path = require('path');

module.exports = {
  dependency: {
    platforms: {
      ios: {
        podspecPath: path.join(__dirname, 'ios', 'appcenter-crashes.podspec')
      },
      android: {
        packageInstance: 'new AppCenterReactNativeCrashesPackage(getApplication(), getResources().getString(R.string.appCenterCrashes_whenToSendCrashes))'
      }
    }
  }
};`,
			ios: "podspecPath=ios/appcenter-crashes.podspec", android: "default",
		},
		{
			name: "watermelondb 0.28.0 (escaped Windows paths)",
			src:  "module.exports = {\n  // autolinking\n  dependency: {\n    platforms: {\n      android: {\n        sourceDir: './native/android',\n      },\n      windows: {\n        sourceDir: '.\\\\native\\\\windows',\n      },\n    },\n  },\n}\n",
			ios:  "default", android: "sourceDir=native/android",
		},
		{name: "null disables", src: `module.exports = { dependency: { platforms: { ios: null, android: null } } }`, ios: "null", android: "null"},
		{name: "no semicolons, ESM default export, TypeScript", src: "import type { Config } from '@react-native-community/cli-types'\nconst config: Config = {\n  dependency: { platforms: { android: null } },\n}\nexport default config satisfies Config\n", ios: "default", android: "null"},
		{name: "destructured join", src: "const { join } = require('node:path')\nmodule.exports = { dependency: { platforms: { android: { sourceDir: join(__dirname, 'src', 'android') } } } }", ios: "default", android: "sourceDir=src/android"},
		{name: "template literal", src: "module.exports = { dependency: { platforms: { android: { sourceDir: `${__dirname}/lib/android` } } } }", ios: "default", android: "sourceDir=lib/android"},
		{name: "empty file", src: "// nothing here\n", ios: "default", android: "default"},
		{name: "a platform package links nothing", src: `module.exports = { platforms: { windows: { linkConfig: () => ({}) } } }`, ios: "null", android: "null"},
		{
			name: "code that does not bear on linking is fine",
			src:  "module.exports = {\n  commands: [require('./commands')],\n  dependency: { platforms: { ios: null } },\n};\n",
			ios:  "null", android: "default",
		},
		{
			name: "a condition on the CLI version (react-native-screens style)",
			src: `let supportsCodegenConfig = false;
try {
  const rnCliAndroidVersion = require('@react-native-community/cli-platform-android/package.json').version;
  const [major] = rnCliAndroidVersion.split('.');
  supportsCodegenConfig = major >= 9;
} catch (e) {}
module.exports = {
  dependency: {
    platforms: {
      android: supportsCodegenConfig ? { componentDescriptors: ['RNSScreenComponentDescriptor'], cmakeListsPath: '../android/src/main/jni/CMakeLists.txt' } : {},
    },
  },
};`,
			ios: "default", android: "unsure: react-native.config.js: dependency.platforms.android is a conditional expression (identifier supportsCodegenConfig ? … : …)",
		},
		{
			name: "a spread may hide null",
			src:  "const base = require('./base')\nmodule.exports = { dependency: { platforms: { ...base, android: {} } } }",
			ios:  "unsure: react-native.config.js: dependency.platforms.ios is property ios of an object whose keys are not all known (it spreads identifier base)", android: "unsure: react-native.config.js: dependency.platforms.android is property android of an object whose keys are not all known (it spreads identifier base)",
		},
		{
			name: "code after module.exports",
			src:  "module.exports = { dependency: { platforms: {} } };\nmodule.exports.dependency.platforms.ios = null;\n",
			ios:  "unsure: react-native.config.js is not understood: code after module.exports may change it (an expression statement)", android: "unsure: react-native.config.js is not understood: code after module.exports may change it (an expression statement)",
		},
		{
			name: "a binding mutated before export",
			src:  "const platforms = {};\nplatforms.ios = null;\nmodule.exports = { dependency: { platforms } };\n",
			ios:  "unsure: react-native.config.js: dependency.platforms is identifier platforms (the file runs an assignment, which may change it)", android: "unsure: react-native.config.js: dependency.platforms is identifier platforms (the file runs an assignment, which may change it)",
		},
		{
			name: "a pure binding is followed",
			src:  "const android = { sourceDir: 'native/android' };\nconst config = { dependency: { platforms: { android } } };\nmodule.exports = config;\n",
			ios:  "default", android: "sourceDir=native/android",
		},
		{
			name: "a getter",
			src:  "module.exports = { dependency: { platforms: { get ios() { return null } } } }",
			ios:  "unsure: react-native.config.js: dependency.platforms.ios is a getter", android: "default",
		},
		{
			name: "a function config",
			src:  "module.exports = () => ({ dependency: {} })",
			ios:  "unsure: react-native.config.js is not understood: it exports a function, not an object literal", android: "unsure: react-native.config.js is not understood: it exports a function, not an object literal",
		},
		{
			name: "conditional export",
			src:  "if (process.env.X) { module.exports = { dependency: { platforms: { ios: null } } } }",
			ios:  "unsure: react-native.config.js is not understood: no module.exports assignment, and the file runs code (an if statement)", android: "unsure: react-native.config.js is not understood: no module.exports assignment, and the file runs code (an if statement)",
		},
		{
			name: "path outside the package",
			src:  "module.exports = { dependency: { platforms: { android: { sourceDir: '../outside/android' } } } }",
			ios:  "default", android: `unsure: react-native.config.js: sourceDir "../outside/android" points outside the package`,
		},
		{
			name: "syntax this reader does not know",
			src:  "module.exports = { dependency: <Platforms /> }",
			ios:  "unsure: react-native.config.js is not understood: not JavaScript this reader understands: JSX or type assertions are not supported", android: "unsure: react-native.config.js is not understood: not JavaScript this reader understands: JSX or type assertions are not supported",
		},
		{
			name: "unterminated",
			src:  "module.exports = { dependency: { platforms: { ios: null } }",
			ios:  "unsure: react-native.config.js is not understood: not JavaScript this reader understands: expected ',' or '}' in an object literal, found end of file", android: "unsure: react-native.config.js is not understood: not JavaScript this reader understands: expected ',' or '}' in an object literal, found end of file",
		},
		{
			name: "regular expressions, comments and strings that look like code",
			src:  "/* module.exports = {} */\nconst re = /\\/*ios: null/g; // }\nmodule.exports = { dependency: { platforms: { ios: 'a' + \"}\" ? null : null } } }",
			ios:  "null", android: "default",
		},
		{
			name: "a shadowed path is not Node's",
			src:  "const path = { join: () => 'android' }\nmodule.exports = { dependency: { platforms: { android: { sourceDir: path.join('x') } } } }",
			ios:  "default", android: "unsure: react-native.config.js: sourceDir is a call to path.join",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := readRNConfig("react-native.config.js", []byte(tc.src))
			require.Equal(t, tc.ios, platformAnswer(c, "ios"), "ios")
			require.Equal(t, tc.android, platformAnswer(c, "android"), "android")
		})
	}
}

func TestAppConfigOverrides(t *testing.T) {
	t.Parallel()
	c := readRNConfig("react-native.config.js", []byte(`module.exports = {
  project: { ios: {}, android: {} },
  dependencies: {
    'react-native-camera': { platforms: { android: null } },
    '@scope/kit': { platforms: { ios: { podspecPath: './vendor/Kit.podspec' } } },
    'react-native-vector-icons': { platforms: { ios: null } },
  },
  assets: ['./assets/fonts/'],
};`))
	require.Equal(t, appOverride{disabled: true}, c.appDependency("react-native-camera", "android"))
	require.Equal(t, appOverride{}, c.appDependency("react-native-camera", "ios"))
	require.Equal(t, appOverride{forced: true}, c.appDependency("@scope/kit", "ios"))
	require.Equal(t, appOverride{}, c.appDependency("lodash", "ios"))
	dirs, ok := c.assetDirs()
	require.True(t, ok)
	require.Equal(t, []string{"assets/fonts"}, dirs)

	open := readRNConfig("react-native.config.js", []byte("module.exports = { dependencies: { ...require('./deps') } }"))
	require.Contains(t, open.appDependency("x", "ios").unsure, "not all known")
}

// FuzzReadRNConfig: the reader never panics and never reads a value out of
// something it failed to parse.
func FuzzReadRNConfig(f *testing.F) {
	for _, s := range []string{
		"module.exports = { dependency: { platforms: { ios: null } } }",
		"const path = require('path');\nmodule.exports = { dependency: { platforms: { ios: { podspecPath: path.join(__dirname, 'ios', 'x.podspec') } } } };",
		"export default { dependency: { platforms: { android: { sourceDir: `${__dirname}/a` } } } }",
		"let x = 1; try { x = f() } catch {} module.exports = x ? {} : { a: [1, , 2, ...y] }",
		"module.exports = { a: /re[/]/g, b: a => ({ c: `t${a}` }), get d() { return 1 }, ['e']: 2, f() {} }",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c := readRNConfig("react-native.config.js", []byte(src))
		for _, pl := range []string{"ios", "android"} {
			p := c.dependencyPlatform(pl)
			if c.err != nil && p.unsure == "" {
				t.Fatalf("a file that is not understood gave a certain answer for %s: %+v", pl, p)
			}
			c.pathSetting(p, "sourceDir")
			c.appDependency("x", pl)
		}
		c.assetDirs()
	})
}
