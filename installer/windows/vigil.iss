; Inno Setup script for Vigil on Windows. UNTESTED: written for the release process, never run
; here (the project's build machines are Linux). Build the bundle first on Windows:
;   python -m installer.build            (runs installer\vigil.spec -> dist\vigil\)
;   iscc /DVersion=0.1.0 /DPolicy=C:\it\policy.json installer\windows\vigil.iss
; Then sign (see docs/releases.md): signtool sign /fd SHA256 /tr <timestamp URL> /td SHA256 ...
#ifndef Version
  #define Version "0.1.0"
#endif

[Setup]
AppId={{6F1D3C52-7C8B-4E55-9B8A-5E1C0A4D2F10}
AppName=Vigil
AppVersion={#Version}
AppPublisher=Vigil release team
DefaultDirName={autopf}\Vigil
DefaultGroupName=Vigil
DisableProgramGroupPage=yes
OutputDir=..\..\dist
OutputBaseFilename=vigil-{#Version}-windows-x86_64-setup
Compression=lzma2
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Per-machine: the policy goes to ProgramData and every user gets the autostart entry.
PrivilegesRequired=admin
UninstallDisplayIcon={app}\vigil.exe

[Files]
Source: "..\..\dist\vigil\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion
#ifdef Policy
; onlyifdoesntexist + uninsneveruninstall: an upgrade never overwrites the policy IT deployed.
Source: "{#Policy}"; DestDir: "{commonappdata}\Vigil"; DestName: "policy.json"; \
    Flags: onlyifdoesntexist uninsneveruninstall
#endif

[Icons]
Name: "{group}\Vigil"; Filename: "{app}\vigil.exe"
; Every user's session starts Vigil.
Name: "{commonstartup}\Vigil"; Filename: "{app}\vigil.exe"

[Run]
Filename: "{app}\vigil.exe"; Parameters: "--self-test"; Flags: runhidden waituntilterminated; \
    StatusMsg: "Checking the installation..."
